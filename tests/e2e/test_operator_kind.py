"""The operator's scenarios on a real cluster: children, readiness from real pods, roll, failed sync, cleanup."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from e2e_support import ROOT, run

pytestmark = pytest.mark.e2e
EXAMPLES = ROOT / "manifests" / "examples"


def kubectl_json(env: dict[str, str], *args: str) -> dict[str, Any] | None:
    out = run("kubectl", "get", *args, "-o", "json", env=env, check=False)
    return json.loads(out.stdout) if out.returncode == 0 else None


def wait(check: Any, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(2)
    raise AssertionError(f"not within {timeout}s")


def ready(obj: dict[str, Any] | None) -> bool:
    conds = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def test_project_becomes_ready_rolls_and_is_cleaned_up(kind_cluster: dict[str, str], tmp_path: Path) -> None:
    env = kind_cluster
    run("kubectl", "apply", "-f", str(EXAMPLES / "01-minimal-project.yaml"), env=env)
    project = wait(lambda: (p := kubectl_json(env, "lproj", "sentiment")) and ready(p) and p)
    assert project["status"]["endpoint"] == "http://sentiment-api.default.svc:8080"
    dep = kubectl_json(env, "deployment", "sentiment-api")
    assert dep is not None and dep["metadata"]["ownerReferences"][0]["uid"] == project["metadata"]["uid"]
    old = dep["spec"]["template"]["metadata"]["annotations"]["kubelabel.io/config-hash"]

    run("kubectl", "patch", "lproj", "sentiment", "--type=merge", "-p", '{"spec":{"title":"Second round"}}', env=env)
    wait(
        lambda: (
            (d := kubectl_json(env, "deployment", "sentiment-api"))
            and d["spec"]["template"]["metadata"]["annotations"]["kubelabel.io/config-hash"] != old
        )
    )
    wait(lambda: (p := kubectl_json(env, "lproj", "sentiment")) and p["status"]["observedGeneration"] == 2 and ready(p))

    run("kubectl", "delete", "lproj", "sentiment", "--wait=true", env=env)
    wait(lambda: kubectl_json(env, "deployment", "sentiment-api") is None, timeout=120)


def test_invalid_project_is_rejected_by_the_api_server(kind_cluster: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: kubelabel.io/v1alpha1\nkind: LabelingProject\nmetadata: {name: bad}\n"
        "spec: {title: T, labelConfig: {inline: '<View/>'}, server: {replicas: 3}}\n"
    )
    out = run("kubectl", "apply", "-f", str(bad), env=kind_cluster, check=False)
    assert out.returncode != 0 and "more than one API server replica needs PostgreSQL" in out.stderr


def test_failed_sync_is_reported(kind_cluster: dict[str, str], tmp_path: Path) -> None:
    """A storage pointing at a bucket nobody can reach: the real Job fails and status says why."""
    env = kind_cluster
    run("kubectl", "apply", "-f", str(EXAMPLES / "01-minimal-project.yaml"), env=env)
    storage = tmp_path / "storage.yaml"
    storage.write_text(
        "apiVersion: kubelabel.io/v1alpha1\nkind: StorageConnection\nmetadata: {name: unreachable}\n"
        "spec: {projectRef: {name: sentiment}, provider: s3, bucket: nope, endpoint: 'http://127.0.0.1:1',"
        " backoffLimit: 0}\n"
    )
    run("kubectl", "apply", "-f", str(storage), env=env)
    obj = wait(
        lambda: (s := kubectl_json(env, "lstore", "unreachable")) and s["status"].get("syncState") == "failed" and s
    )
    assert obj["status"]["message"]
    run("kubectl", "delete", "-f", str(storage), "-f", str(EXAMPLES / "01-minimal-project.yaml"), env=env)
