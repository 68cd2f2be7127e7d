"""Files copied from one source (CRDs into the chart, alerts, dashboard, Argo CD health) are not stale."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys

import pytest
import yaml
from manifest_checks import CHART, CRDS, MANIFESTS, ROOT


def _sync_module():
    spec = importlib.util.spec_from_file_location("sync_chart_crds", ROOT / "scripts" / "sync_chart_crds.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["sync_chart_crds"] = module
    spec.loader.exec_module(module)
    return module


def test_generated_files_match_their_sources() -> None:
    stale = _sync_module().stale_files()
    assert stale == [], f"run `python scripts/sync_chart_crds.py`; stale: {stale}"


def test_check_mode_names_stale_and_orphaned_files(tmp_path, monkeypatch, capsys) -> None:
    sync = _sync_module()
    shutil.copytree(CRDS, tmp_path / "crds")
    shutil.copytree(MANIFESTS / "monitoring", tmp_path / "manifests" / "monitoring")
    (tmp_path / "manifests" / "argocd").mkdir(parents=True)
    shutil.copy(MANIFESTS / "argocd" / "health.lua", tmp_path / "manifests" / "argocd" / "health.lua")
    chart = tmp_path / "charts" / "kubelabel"
    for name, value in [
        ("ROOT", tmp_path),
        ("CRDS", tmp_path / "crds"),
        ("CHART", chart),
        ("MONITORING", tmp_path / "manifests" / "monitoring"),
        ("ARGOCD", tmp_path / "manifests" / "argocd"),
    ]:
        monkeypatch.setattr(sync, name, value)
    assert sync.main([]) == 0
    assert sync.main(["--check"]) == 0

    # A CRD regenerated with a new field makes the chart copy stale; a removed CRD leaves an orphan.
    source = tmp_path / "crds" / "mlbackends.kubelabel.io.yaml"
    source.write_text(source.read_text().replace("shortNames:", "shortNames:\n    - mlbk", 1))
    (tmp_path / "crds" / "storageconnections.kubelabel.io.yaml").unlink()
    assert sync.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "stale: charts/kubelabel/templates/crds/mlbackends.kubelabel.io.yaml" in err
    assert "storageconnections.kubelabel.io.yaml (its source in crds/ is gone)" in err
    assert sync.main([]) == 0 and sync.main(["--check"]) == 0
    assert not (chart / "templates" / "crds" / "storageconnections.kubelabel.io.yaml").exists()


def test_chart_crds_carry_the_generated_spec() -> None:
    sync = _sync_module()
    for source in sorted(CRDS.glob("*.yaml")):
        template = (CHART / "templates" / "crds" / source.name).read_text()
        assert template.startswith("{{- /* Generated") and "{{- if .Values.crds.enabled }}" in template
        assert sync.chart_crd(source) == template


def test_crds_are_the_three_kinds() -> None:
    names = sorted(p.name for p in CRDS.glob("*.yaml"))
    assert names == [
        "labelingprojects.kubelabel.io.yaml",
        "mlbackends.kubelabel.io.yaml",
        "storageconnections.kubelabel.io.yaml",
    ]


def test_chart_copies_of_monitoring_files() -> None:
    rules = yaml.safe_load((MANIFESTS / "monitoring" / "prometheusrule.yaml").read_text())
    copy = yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    assert copy == {"groups": rules["spec"]["groups"]}
    dashboard = json.loads((MANIFESTS / "monitoring" / "grafana-dashboard.json").read_text())
    assert json.loads((CHART / "files" / "grafana-dashboard.json").read_text()) == dashboard


def test_generated_crd_template_keeps_braces_and_annotations(tmp_path, monkeypatch) -> None:
    helm_python = pytest.importorskip("helm_python", reason="helm-python-sdk is in the dev extra")
    sync = _sync_module()
    source = tmp_path / "widgets.example.io.yaml"
    crd = yaml.safe_load((CRDS / "mlbackends.kubelabel.io.yaml").read_text())
    crd["metadata"] = {"name": "widgets.example.io", "annotations": {"example.io/note": "{{ not a template }}"}}
    crd["spec"]["names"] = {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"}
    crd["spec"]["group"] = "example.io"
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] = "Use {{ .Values }} literally."
    source.write_text(yaml.safe_dump(crd))
    monkeypatch.setattr(sync, "ROOT", tmp_path)
    template = sync.chart_crd(source)
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "crds" / "widgets.example.io.yaml").write_text(template)
    rendered = helm_python.Chart.load(str(chart)).render({"crds": {"annotations": {"a": "b"}}}, name="r", namespace="n")
    widget = yaml.safe_load(rendered["kubelabel/templates/crds/widgets.example.io.yaml"])
    assert widget["metadata"]["annotations"] == {
        "helm.sh/resource-policy": "keep",
        "a": "b",
        "example.io/note": "{{ not a template }}",
    }
    assert widget["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] == "Use {{ .Values }} literally."
    assert widget["metadata"]["labels"]["app.kubernetes.io/instance"] == "r"
