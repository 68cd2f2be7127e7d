"""The Argo CD health checks, run by a real Lua interpreter on status examples of each kind.

Argo CD runs them with gopher-lua (Lua 5.1 semantics, numbers are floats), so they run here on Lua 5.1
and, to catch version-specific behaviour, on Lua 5.4.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import yaml
from manifest_checks import MANIFESTS

lupa = pytest.importorskip("lupa", reason="lupa is in the dev extra")

HEALTH = MANIFESTS / "argocd" / "health.lua"
KINDS = {
    "LabelingProject": {"endpoint": "http://demo-api.team.svc:8080"},
    "StorageConnection": {"syncState": "completed", "lastSyncCount": 12},
    "MLBackend": {"ready": True, "url": "http://model.team.svc:9090"},
}
T0 = "2026-11-27T10:00:00Z"


def condition(type_: str, status: str, reason: str, message: str = "", generation: int | None = 3) -> dict[str, Any]:
    out = {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": T0}
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def resource(kind: str, status: dict[str, Any] | None, generation: int = 3) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "kubelabel.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "demo", "namespace": "team", "generation": generation},
        "spec": {},
    }
    if status is not None:
        obj["status"] = {**KINDS[kind], **status}
    return obj


def run_health(kind: str, obj: dict[str, Any], version: str) -> dict[str, str]:
    runtime_module = importlib.import_module(f"lupa.{version}")
    lua = runtime_module.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(HEALTH.read_text())
    return dict(result.items())


READY = condition("Ready", "True", "Ready", "API server is serving")
NOT_PROGRESSING = condition("Progressing", "False", "UpToDate")
NOT_DEGRADED = condition("Degraded", "False", "AsExpected")

CASES: list[tuple[str, dict[str, Any] | None, int, str, str]] = [
    ("no status yet", None, 1, "Progressing", "Waiting for the operator to report status"),
    ("status without conditions", {"observedGeneration": 1}, 1, "Progressing", "Waiting for the operator"),
    (
        "ready for the current generation",
        {"observedGeneration": 3, "conditions": [READY, NOT_PROGRESSING, NOT_DEGRADED]},
        3,
        "Healthy",
        "Ready: API server is serving",
    ),
    (
        "stale status.observedGeneration",
        {"observedGeneration": 2, "conditions": [READY, NOT_PROGRESSING, NOT_DEGRADED]},
        3,
        "Progressing",
        "Waiting for the operator to reconcile generation 3",
    ),
    (
        "no status.observedGeneration while the object has a generation",
        {"conditions": [READY]},
        3,
        "Progressing",
        "reconcile generation 3",
    ),
    (
        "Ready computed for an older generation",
        {"observedGeneration": 4, "conditions": [READY, NOT_DEGRADED]},
        4,
        "Progressing",
        "Waiting for the Ready condition",
    ),
    (
        "progressing",
        {
            "observedGeneration": 3,
            "conditions": [
                condition("Ready", "False", "Deploying"),
                condition("Progressing", "True", "Deploying", "waiting for 1 of 1 API server replicas"),
                NOT_DEGRADED,
            ],
        },
        3,
        "Progressing",
        "Deploying: waiting for 1 of 1 API server replicas",
    ),
    (
        "degraded",
        {
            "observedGeneration": 3,
            "conditions": [
                condition("Ready", "False", "DatabaseUnreachable", "cannot connect to postgres"),
                NOT_PROGRESSING,
                condition("Degraded", "True", "DatabaseUnreachable", "cannot connect to postgres"),
            ],
        },
        3,
        "Degraded",
        "DatabaseUnreachable: cannot connect to postgres",
    ),
    (
        "degraded wins over progressing",
        {
            "observedGeneration": 3,
            "conditions": [
                condition("Progressing", "True", "Retrying"),
                condition("Degraded", "True", "SecretMissing", "secret s3-creds not found"),
            ],
        },
        3,
        "Degraded",
        "SecretMissing: secret s3-creds not found",
    ),
    (
        "not ready and not progressing",
        {"observedGeneration": 3, "conditions": [condition("Ready", "False", "ImagePullBackOff"), NOT_PROGRESSING]},
        3,
        "Degraded",
        "ImagePullBackOff",
    ),
    (
        "ready unknown",
        {"observedGeneration": 3, "conditions": [condition("Ready", "Unknown", "Checking")]},
        3,
        "Progressing",
        "Waiting for the Ready condition",
    ),
    (
        "conditions without their own observedGeneration",
        {"observedGeneration": 3, "conditions": [condition("Ready", "True", "Ready", generation=None)]},
        3,
        "Healthy",
        "Ready",
    ),
]


@pytest.mark.parametrize("version", ["lua51", "lua54"])
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(("case", "status", "generation", "health", "message"), CASES, ids=[c[0] for c in CASES])
def test_health(kind: str, version: str, case: str, status: Any, generation: int, health: str, message: str) -> None:
    result = run_health(kind, resource(kind, status, generation), version)
    assert result["status"] == health, (case, result)
    assert message in result["message"], (case, result)


def test_storage_sync_failure_is_degraded() -> None:
    status = {
        "observedGeneration": 5,
        "syncState": "failed",
        "conditions": [
            condition("Ready", "False", "SyncFailed", "AccessDenied listing s3://bucket/images/", 5),
            condition("Degraded", "True", "SyncFailed", "AccessDenied listing s3://bucket/images/", 5),
        ],
    }
    result = run_health("StorageConnection", resource("StorageConnection", status, 5), "lua51")
    assert result == {"status": "Degraded", "message": "SyncFailed: AccessDenied listing s3://bucket/images/"}


def test_argocd_cm_snippet_installs_each_script() -> None:
    cm = yaml.safe_load((MANIFESTS / "argocd" / "argocd-cm-health.yaml").read_text())
    assert cm["metadata"]["name"] == "argocd-cm"
    assert cm["data"] == {f"resource.customizations.health.kubelabel.io_{kind}": HEALTH.read_text() for kind in KINDS}
