"""A user's path: the mock API served standalone, `kubelabel operator` as a process, `kubectl apply` of the examples."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from operator_support import eventually

from tests.support.net import free_port
from tests.support.services import require_executable

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
EXAMPLES = ROOT / "manifests" / "examples"
KUBELABEL = Path(sys.executable).with_name("kubelabel")


async def _port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    kubectl = require_executable("kubectl", "a Kubernetes client; the Debian package kubernetes-client has one")
    port, liveness = free_port(), free_port()
    config = tmp_path / "kubeconfig"
    mock = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "mock_server.py"), "--port", str(port), "--kubeconfig", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await eventually(lambda: _port_open(port) if config.exists() else False, timeout=30)
    env = {
        **os.environ,
        "KUBECONFIG": str(config),
        "KUBELABEL_OPERATOR_KUBECONFIG": str(config),
        "KUBELABEL_OPERATOR_STANDALONE": "true",
        "KUBELABEL_OPERATOR_METRICS_PORT": str(free_port()),
        "KUBELABEL_OPERATOR_METRICS_HOST": "127.0.0.1",
        "KUBELABEL_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{liveness}/healthz",
    }
    log = tmp_path / "operator.log"
    with log.open("wb") as out:
        operator = await asyncio.create_subprocess_exec(
            str(KUBELABEL), "operator", "--namespace", "default", env=env, stdout=out, stderr=out
        )
    try:
        yield {"kubectl": kubectl, "env": env, "liveness": liveness, "log": log, "operator": operator}
    finally:
        await _stop(operator)
        await _stop(mock)


async def kubectl(cluster: dict[str, Any], *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        cluster["kubectl"], *args, env=cluster["env"], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {err.decode()}")
    return out.decode()


async def get_json(cluster: dict[str, Any], *args: str) -> dict[str, Any] | None:
    try:
        return json.loads(await kubectl(cluster, "get", *args, "-o", "json"))  # type: ignore[no-any-return]
    except AssertionError:
        return None


async def test_kubectl_apply_examples_with_kubelabel_operator(cluster):
    async def alive() -> bool:
        async with httpx.AsyncClient() as http:
            try:
                return (await http.get(f"http://127.0.0.1:{cluster['liveness']}/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

    await eventually(alive, timeout=60)
    out = await kubectl(cluster, "apply", "--validate=false", "-f", str(EXAMPLES))
    assert out.count("created") == 9, out  # 4 Secrets, 2 projects, 1 storage, 2 ML backends

    async def children() -> dict[str, dict[str, Any]] | None:
        listed = await get_json(cluster, "deployments,jobs,ingresses,services")
        items = {f"{i['kind']}/{i['metadata']['name']}": i for i in (listed or {}).get("items", [])}
        wanted = {
            "Deployment/sentiment-api",
            "Deployment/images-api",
            "Deployment/images-worker",  # PostgreSQL + Redis: jobs go to a worker
            "Deployment/sentiment-model-model",
            "Service/images-api",
            "Ingress/images-api",
            "Job/street-photos-sync-1",
        }
        return items if wanted <= set(items) else None

    items = await eventually(children, timeout=60, interval=0.5)
    assert items["Deployment/sentiment-api"]["metadata"]["ownerReferences"][0]["kind"] == "LabelingProject"
    assert "Deployment/sentiment-worker" not in items  # SQLite, no Redis: the API runs its own jobs
    assert items["Deployment/images-worker"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["worker"]
    assert items["Job/street-photos-sync-1"]["metadata"]["ownerReferences"][0]["kind"] == "StorageConnection"

    async def project_status() -> dict[str, Any] | None:
        obj = await get_json(cluster, "lproj", "sentiment")
        return obj if obj and (obj.get("status") or {}).get("conditions") else None

    project = await eventually(project_status)
    assert project["status"]["endpoint"] == "http://sentiment-api.default.svc:8080"
    listed = await kubectl(cluster, "get", "kubelabel")
    assert "sentiment" in listed and "street-photos" in listed and "detector" in listed

    await kubectl(cluster, "delete", "--wait=false", "-f", str(EXAMPLES / "01-minimal-project.yaml"))
    try:
        await eventually(lambda: _gone(cluster, "deployment", "sentiment-api"))
    except AssertionError:
        left = await get_json(cluster, "deployment", "sentiment-api")
        lines = cluster["log"].read_text(errors="replace").splitlines()
        tail = "\n".join(line for line in lines if "[default/sentiment]" in line)[-4000:]
        raise AssertionError(f"Deployment left behind: {left and left['metadata']}\n--- log ---\n{tail}") from None
    # The generated admin token never shows up in the operator's output.
    secret = await get_json(cluster, "secret", "images-admin-token")
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert len(token) == 64 and token not in cluster["log"].read_text()


async def _gone(cluster: dict[str, Any], *args: str) -> bool:
    return await get_json(cluster, *args) is None
