"""`kubectl kustomize` builds every kustomization under manifests/ into valid objects.

kubectl comes from PATH or next to the venv's python (scripts/install-test-tools.sh puts it there when
the machine has none); without it these tests skip locally and fail in CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from manifest_checks import MANIFESTS, ROOT, build, by_kind, one, validate_all

KUSTOMIZATIONS = sorted(p.parent for p in MANIFESTS.rglob("kustomization.yaml"))


def test_kustomizations_exist() -> None:
    names = {p.relative_to(MANIFESTS).as_posix() for p in KUSTOMIZATIONS}
    assert {"monitoring", "argocd", "overlays/cluster-wide", "overlays/namespaced", "overlays/monitoring"} <= names


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.relative_to(MANIFESTS).as_posix())
def test_builds_valid_objects(directory: Path) -> None:
    needs_base = directory.relative_to(MANIFESTS).parts[0] == "overlays"
    if needs_base and not (MANIFESTS / "base" / "kustomization.yaml").exists():
        pytest.skip("manifests/base is not written yet")
    objects = build(directory)
    assert objects
    assert validate_all(objects) == []


def test_monitoring_kustomization() -> None:
    objects = build(MANIFESTS / "monitoring")
    dashboard = one(objects, "ConfigMap", "kubelabel-grafana-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert (MANIFESTS / "monitoring" / "grafana-dashboard.json").read_text() == dashboard["data"]["kubelabel.json"]
    ksm = one(objects, "ConfigMap", "kubelabel-kube-state-metrics-config")
    assert "CustomResourceStateMetrics" in ksm["data"]["config.yaml"]
    assert one(objects, "PrometheusRule")["spec"]["groups"]


def test_argocd_kustomization() -> None:
    objects = build(MANIFESTS / "argocd")
    app = one(objects, "Application", "kubelabel-operator")
    assert app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-1"
    assert app["spec"]["source"]["path"] == "charts/kubelabel"
    assert (ROOT / app["spec"]["source"]["path"] / app["spec"]["source"]["helm"]["valueFiles"][0]).exists()
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    appset = one(objects, "ApplicationSet")
    template = appset["spec"]["template"]
    assert int(template["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) > -1
    assert "SkipDryRunOnMissingResource=true" in template["spec"]["syncPolicy"]["syncOptions"]
    assert appset["spec"]["generators"][0]["git"]["directories"] == [{"path": "projects/*"}]
    assert not by_kind(objects, "ConfigMap")
