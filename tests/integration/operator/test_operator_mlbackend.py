"""MLBackend with the real API server (booted from the operator's project.json) and the real model server."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubelabel_operator.builders import project as project_build
from kubelabel_operator.k8s.resources import BY_KIND, DEPLOYMENTS, MLBACKENDS, PROJECTS, SECRETS, SERVICES
from kubelabel_operator.models import LabelingProjectSpec
from operator_support import METRICS_PORT, NS, condition, eventually, namespaced

from tests.support.apiserver import ADMIN_TOKEN
from tests.support.net import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[3]
BACKEND_USER, BACKEND_PASSWORD = "ml-client", "model-server-password-0123"


@contextmanager
def model_server_process(tmp_path: Path, **env: str) -> Iterator[str]:
    """`kubelabel model-server` as a real process on 127.0.0.1 (with `env`, e.g. its basic-auth settings)."""
    port = free_port()
    code = f"import sys; from kubelabel_model_server.app import serve; sys.exit(serve('127.0.0.1', {port}))"
    env = {**os.environ, "MODEL_DIR": str(tmp_path / "models"), "PYTHONPATH": str(REPO), **env}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def model_server(tmp_path: Path) -> Iterator[str]:
    with model_server_process(tmp_path) as url:
        yield url


@pytest.fixture
def guarded_model_server(tmp_path: Path) -> Iterator[str]:
    """A model server that answers only with basic auth (its /health stays open)."""
    with model_server_process(tmp_path, BASIC_AUTH_USER=BACKEND_USER, BASIC_AUTH_PASS=BACKEND_PASSWORD) as url:
        yield url


@pytest.fixture
def project_server(server_pool: Any, tmp_path: Path, example: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The project's API server, started as the Deployment would start it: from the operator's project.json.

    The operator reaches it through KUBELABEL_OPERATOR_API_URL_TEMPLATE (in a cluster: the Service).
    """
    spec = LabelingProjectSpec.model_validate(example("01-minimal-project.yaml")[0]["spec"])
    project_file = tmp_path / "project.json"
    project_file.write_text(project_build.render_project_json(spec, spec.label_config.inline or ""))
    server = server_pool.new("sqlite", KUBELABEL_PROJECT_FILE=str(project_file))
    monkeypatch.setenv("KUBELABEL_OPERATOR_API_URL_TEMPLATE", server.url)
    return server


def b64(text: str) -> str:
    """A Secret's data value."""
    return base64.b64encode(text.encode()).decode()


def admin_token_secret() -> dict[str, Any]:
    """The admin-token Secret as the operator generates it; here with the token the API server was started with."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "sentiment-admin-token",
            "namespace": NS,
            "labels": {"app.kubernetes.io/managed-by": "kubelabel-operator", "kubelabel.io/project": "sentiment"},
        },
        "data": {"token": b64(ADMIN_TOKEN)},
    }


async def where(client: Any, res: Any, name: str, predicate: Any) -> dict[str, Any] | None:
    obj = await client.get(res, NS, name)
    return obj if obj and obj.get("status") and predicate(obj) else None


async def scrape() -> str:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"http://127.0.0.1:{METRICS_PORT}/metrics")).text


async def test_external_backend_registers_and_project_stats_flow(
    project_server, model_server, kube, client, operator, example
):
    headers = {"Authorization": f"Token {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=project_server.url, headers=headers, timeout=30) as api:
        r = await api.post("/api/projects/1/import", json=[{"text": "great"}, {"text": "awful"}, {"text": "fine"}])
        assert r.status_code == 201, r.text
        task_id = (await api.get("/api/tasks", params={"project": 1})).json()
        task_id = (task_id["tasks"] if isinstance(task_id, dict) else task_id)[0]["id"]
        result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]
        r = await api.post(f"/api/tasks/{task_id}/annotations/", json={"result": result})
        assert r.status_code == 201, r.text

        await client.create(SECRETS, NS, admin_token_secret())
        for doc in namespaced(example("01-minimal-project.yaml")):
            await client.create(BY_KIND[doc["kind"]], NS, doc)
        backend = namespaced(example("04-ml-backend.yaml"))[1]
        backend["metadata"]["name"] = "sentiment-model"
        backend["spec"] = {"projectRef": {"name": "sentiment"}, "external": {"url": model_server}, "timeoutSeconds": 5}
        await client.create(MLBACKENDS, NS, backend)

        # Counts polled from the project's own API with its admin token.
        project = await eventually(
            lambda: where(client, PROJECTS, "sentiment", lambda p: p["status"].get("tasks") == 3)
        )
        assert project["status"]["labeledTasks"] == 1 and project["status"]["annotations"] == 1

        mlb = await eventually(
            lambda: where(
                client, MLBACKENDS, "sentiment-model", lambda m: condition(m, "Ready").get("status") == "True"
            )
        )
        assert mlb["status"]["ready"] is True and mlb["status"]["url"] == model_server
        assert mlb["status"]["modelVersion"] and mlb["status"]["lastHealthCheck"]
        registered = (await api.get("/api/ml", params={"project": 1})).json()
        assert [(b["title"], b["url"], b["id"]) for b in registered] == [
            ("default/sentiment-model", model_server, mlb["status"]["backendId"])
        ]
        assert "kubelabel.io/finalizer" in mlb["metadata"]["finalizers"]

        # A reconcile is counted when it returns, just after the status it patched: wait for it.
        success = 'kubelabel_operator_reconcile_total{kind="MLBackend",result="success"}'

        async def counted() -> str:
            text = await scrape()
            return text if success in text else ""

        text = await eventually(counted)
        assert 'kubelabel_project_tasks{namespace="default",project="sentiment"} 3.0' in text
        assert 'kubelabel_mlbackend_up{backend="sentiment-model",namespace="default"} 1.0' in text

        # Deletion runs the one finalizer: the registration in the project's database goes away.
        await client.delete(MLBACKENDS, NS, "sentiment-model")
        await eventually(lambda: _absent(client, MLBACKENDS, "sentiment-model"))
        assert (await api.get("/api/ml", params={"project": 1})).json() == []
        assert 'backend="sentiment-model"' not in await scrape()


async def test_basic_auth_credentials_reach_the_project_api(
    project_server, guarded_model_server, kube, client, operator, example
):
    """The operator checks a guarded backend with the Secret's credentials and registers it with them too."""
    await client.create(SECRETS, NS, admin_token_secret())
    await client.create(
        SECRETS,
        NS,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "model-auth", "namespace": NS},
            "data": {"username": b64(BACKEND_USER), "password": b64(BACKEND_PASSWORD)},
        },
    )
    for doc in namespaced(example("01-minimal-project.yaml")):
        await client.create(BY_KIND[doc["kind"]], NS, doc)
    backend = namespaced(example("04-ml-backend.yaml"))[1]
    backend["metadata"]["name"] = "guarded-model"
    backend["spec"] = {
        "projectRef": {"name": "sentiment"},
        "external": {"url": guarded_model_server},
        "authSecretRef": {"name": "model-auth"},
        "timeoutSeconds": 5,
    }
    await client.create(MLBACKENDS, NS, backend)
    mlb = await eventually(
        lambda: where(client, MLBACKENDS, "guarded-model", lambda m: condition(m, "Ready").get("status") == "True")
    )
    assert mlb["status"]["modelVersion"]  # from /setup, which needs the credentials
    assert BACKEND_PASSWORD not in str(mlb)

    headers = {"Authorization": f"Token {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=project_server.url, headers=headers, timeout=30) as api:
        (registered,) = (await api.get("/api/ml", params={"project": 1})).json()
        assert registered["auth_method"] == "BASIC_AUTH" and registered["basic_auth_user"] == BACKEND_USER
        assert registered["basic_auth_pass_is_set"] is True and "basic_auth_pass" not in registered
        # The project's API reaches the guarded backend with them (its /predict needs basic auth).
        r = await api.post("/api/projects/1/import", json=[{"text": "a fine day"}])
        assert r.status_code == 201, r.text
        r = await api.post(f"/api/ml/{registered['id']}/predict/test")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ok"

        # Without the Secret reference the registration loses its credentials too.
        await client.patch(MLBACKENDS, NS, "guarded-model", {"spec": {"authSecretRef": None}})

        async def cleared() -> dict[str, Any] | None:
            (now,) = (await api.get("/api/ml", params={"project": 1})).json()
            return now if now["auth_method"] == "NONE" else None

        now = await eventually(cleared)
        assert now["basic_auth_user"] is None and now["basic_auth_pass_is_set"] is False


async def test_a_backend_going_down_is_reported_by_the_periodic_check(
    project_server, kube, client, operator, example, tmp_path
):
    """The periodic health check (the operator's own loop, not a Kopf handler) reports with status and an Event."""
    await client.create(SECRETS, NS, admin_token_secret())
    for doc in namespaced(example("01-minimal-project.yaml")):
        await client.create(BY_KIND[doc["kind"]], NS, doc)
    backend = namespaced(example("04-ml-backend.yaml"))[1]
    backend["metadata"]["name"] = "fading-model"
    with model_server_process(tmp_path) as url:
        backend["spec"] = {
            "projectRef": {"name": "sentiment"},
            "external": {"url": url},
            "timeoutSeconds": 2,
            "healthCheckIntervalSeconds": 5,
        }
        await client.create(MLBACKENDS, NS, backend)
        await eventually(
            lambda: where(client, MLBACKENDS, "fading-model", lambda m: condition(m, "Ready").get("status") == "True")
        )
    # The model server is gone; nothing changes the resource, so only the periodic check can notice.
    mlb = await eventually(
        lambda: where(
            client, MLBACKENDS, "fading-model", lambda m: condition(m, "Degraded").get("reason") == "BackendUnreachable"
        )
    )
    assert mlb["status"]["ready"] is False and condition(mlb, "Ready")["status"] == "False"

    def warnings() -> list[dict[str, Any]]:
        events = [e.raw for (res, _, _), e in kube.objects.items() if res == "v1/events" and not e.deleted]
        return [
            e for e in events if e["involvedObject"]["name"] == "fading-model" and e["reason"] == "BackendUnreachable"
        ]

    (event,) = await eventually(warnings)
    assert event["type"] == "Warning" and event["involvedObject"]["kind"] == "MLBackend"
    assert event["involvedObject"]["uid"] == mlb["metadata"]["uid"] and "unreachable" in event["message"]


async def _absent(client: Any, res: Any, name: str) -> bool:
    return await client.get(res, NS, name) is None


async def test_managed_gpu_backend_unreachable_is_degraded(kube, client, operator, example):
    for doc in namespaced(example("01-minimal-project.yaml")):
        await client.create(BY_KIND[doc["kind"]], NS, doc)
    backend = namespaced(example("04-ml-backend.yaml"))[0]
    backend["spec"]["managed"]["gpu"] = 1
    backend["spec"]["timeoutSeconds"] = 1
    await client.create(MLBACKENDS, NS, backend)

    dep = await eventually(lambda: client.get(DEPLOYMENTS, NS, "sentiment-model-model"))
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["image"] == "kubelabel:test"
    # The Service is applied right after the Deployment, by the same reconcile: wait for it too.
    assert await eventually(lambda: client.get(SERVICES, NS, "sentiment-model-model")) is not None

    mlb = await eventually(
        lambda: where(client, MLBACKENDS, "sentiment-model", lambda m: condition(m, "Degraded").get("status") == "True")
    )
    assert condition(mlb, "Degraded")["reason"] == "BackendUnreachable"
    assert "http://sentiment-model-model.default.svc:9090" in condition(mlb, "Degraded")["message"]
    assert mlb["status"]["ready"] is False

    await client.delete(MLBACKENDS, NS, "sentiment-model")
    await eventually(lambda: _absent(client, MLBACKENDS, "sentiment-model"))
    await eventually(lambda: _absent(client, DEPLOYMENTS, "sentiment-model-model"))
