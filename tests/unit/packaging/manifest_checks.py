"""Render and validate the install manifests: Helm chart, kustomize overlays, Argo CD and monitoring.

Every object is checked against the Kubernetes OpenAPI schemas of KUBE_VERSION (kubernetes-validate,
bundled schemas, strict: unknown fields fail); kubelabel.io objects against the openAPIV3Schema of the
CRDs in crds/; the few third-party kinds (prometheus-operator, Argo CD, kopf) against the minimal
structure below, since their schemas are not bundled.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from tests.support.services import unavailable

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "kubelabel"
CRDS = ROOT / "crds"
MANIFESTS = ROOT / "manifests"
KUBE_VERSION = "1.32"
RELEASE = "kubelabel"
NAMESPACE = "kubelabel-system"

# Third-party kinds with the fields their controllers need; unknown kinds fail.
EXTERNAL_KINDS: dict[tuple[str, str], list[str]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ["spec.selector", "spec.endpoints"],
    ("monitoring.coreos.com/v1", "PodMonitor"): ["spec.selector", "spec.podMetricsEndpoints"],
    ("monitoring.coreos.com/v1", "PrometheusRule"): ["spec.groups"],
    ("argoproj.io/v1alpha1", "Application"): ["spec.source", "spec.destination", "spec.project"],
    ("argoproj.io/v1alpha1", "ApplicationSet"): ["spec.generators", "spec.template"],
    ("kopf.dev/v1", "KopfPeering"): [],
    ("kopf.dev/v1", "ClusterKopfPeering"): [],
}


_DURATION = {"type": "string", "pattern": "^([0-9]+(ms|s|m|h|d|w|y))+$"}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "port": {"type": "string"},
        "path": {"type": "string"},
        "interval": _DURATION,
        "scrapeTimeout": _DURATION,
    },
}
# The fields kubelabel uses of the prometheus-operator kinds (their CRDs are not bundled here): a
# misspelt or misplaced field fails instead of being silently ignored by the operator.
EXTERNAL_SCHEMAS: dict[str, dict[str, Any]] = {
    "PrometheusRule": {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["groups"],
                "properties": {
                    "groups": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "rules"],
                            "properties": {
                                "name": {"type": "string"},
                                "interval": _DURATION,
                                "rules": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["expr"],
                                        "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                        "properties": {
                                            "alert": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9]*$"},
                                            "record": {"type": "string"},
                                            "expr": {"type": "string", "minLength": 1},
                                            "for": _DURATION,
                                            "labels": _STRING_MAP,
                                            "annotations": _STRING_MAP,
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            }
        },
    },
    "ServiceMonitor": {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "selector": {"type": "object"},
                    "namespaceSelector": {"type": "object"},
                    "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
                },
            }
        },
    },
    "PodMonitor": {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "selector": {"type": "object"},
                    "namespaceSelector": {"type": "object"},
                    "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
                },
            }
        },
    },
}


class ManifestError(AssertionError):
    pass


def load_documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render_chart(values: dict[str, Any] | None = None, namespace: str = NAMESPACE) -> dict[str, str]:
    """Render the chart offline (Helm's Go SDK through helm-python-sdk); template path -> text."""
    import helm_python

    chart = helm_python.Chart.load(str(CHART))
    return chart.render(values or {}, name=RELEASE, namespace=namespace)


def chart_objects(values: dict[str, Any] | None = None, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """The rendered objects (NOTES.txt left out); a fresh copy per call, rendered once per values."""
    return copy.deepcopy(_chart_objects(json.dumps(values or {}, sort_keys=True), namespace))


@functools.cache
def _chart_objects(values_json: str, namespace: str) -> list[dict[str, Any]]:
    rendered = render_chart(json.loads(values_json), namespace)
    objects: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(load_documents(text))
    return objects


def example_values() -> dict[str, dict[str, Any]]:
    return {p.stem: yaml.safe_load(p.read_text()) or {} for p in sorted((CHART / "examples").glob("*.yaml"))}


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema of every served version of the CRDs in crds/."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def _describe(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


def _has_path(obj: dict[str, Any], dotted: str) -> bool:
    node: Any = obj
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return node is not None


def validate_object(obj: dict[str, Any]) -> None:
    """Raise ManifestError naming the object and the first schema violation."""
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    if not obj.get("metadata", {}).get("name"):
        raise ManifestError(f"{_describe(obj)}: metadata.name is missing")
    if key in crd_schemas():
        try:
            jsonschema.validate(obj, crd_schemas()[key])
        except jsonschema.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path)
            raise ManifestError(f"{_describe(obj)}: {path}: {exc.message}") from None
        return
    if key in EXTERNAL_KINDS:
        missing = [p for p in EXTERNAL_KINDS[key] if not _has_path(obj, p)]
        if missing:
            raise ManifestError(f"{_describe(obj)}: missing {', '.join(missing)}")
        if key[1] in EXTERNAL_SCHEMAS:
            try:
                jsonschema.validate(obj, EXTERNAL_SCHEMAS[key[1]])
            except jsonschema.ValidationError as exc:
                path = ".".join(str(p) for p in exc.absolute_path)
                raise ManifestError(f"{_describe(obj)}: {path}: {exc.message}") from None
        return
    try:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        raise ManifestError(f"{_describe(obj)}: no schema for {key} in Kubernetes {KUBE_VERSION}") from None
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        raise ManifestError(f"{_describe(obj)}: {path}: {exc.message}") from None


def validate_all(objects: Iterable[dict[str, Any]]) -> list[str]:
    """Every violation, one line each (empty when all objects are valid)."""
    errors = [_violation(json.dumps(obj, sort_keys=True)) for obj in objects]
    return [e for e in errors if e]


@functools.cache
def _violation(obj_json: str) -> str:
    # Cached by content: the same CRDs appear in every rendering and their schema check is the slow part.
    try:
        validate_object(json.loads(obj_json))
    except ManifestError as exc:
        return str(exc)
    return ""


def kubectl() -> str:
    """kubectl beside the venv's python (scripts/install-test-tools.sh) or on PATH; skip/fail without."""
    beside_python = Path(sys.executable).parent / "kubectl"
    found = str(beside_python) if beside_python.exists() else shutil.which("kubectl")
    if found is None:
        unavailable("kubectl not found (run scripts/install-test-tools.sh)")
    return found  # type: ignore[return-value]


def build(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise ManifestError(f"kubectl kustomize {directory.relative_to(ROOT)}: {result.stderr}")
    return load_documents(result.stdout)


def by_kind(objects: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def one(objects: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in by_kind(objects, kind) if name is None or o["metadata"]["name"] == name]
    if len(found) != 1:
        raise ManifestError(f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


def rules_of(role: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples granted by a Role or ClusterRole."""
    for rule in role.get("rules", []):
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule.get("verbs", []):
                    yield group, resource, verb


METRIC = re.compile(r"\b(kubelabel_[a-z0-9_]+)")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def metric_names(expr: str) -> set[str]:
    """kubelabel_* series named in a PromQL expression, histogram suffixes removed."""
    names = set()
    for name in METRIC.findall(expr):
        if name not in CONTRACT_METRICS:  # kubelabel_storage_last_sync_count is a gauge, not a histogram part
            for suffix in HISTOGRAM_SUFFIXES:
                if name.endswith(suffix):
                    name = name[: -len(suffix)]
        names.add(name)
    return names


# The metric names of notes/contracts.md ("Prometheus metric names"): dashboards and alerts use only these.
CONTRACT_METRICS = {
    "kubelabel_operator_reconcile_total",
    "kubelabel_operator_reconcile_errors_total",
    "kubelabel_operator_reconcile_duration_seconds",
    "kubelabel_project_ready",
    "kubelabel_project_replicas",
    "kubelabel_project_tasks",
    "kubelabel_project_labeled_tasks",
    "kubelabel_project_annotations",
    "kubelabel_storage_sync_state",
    "kubelabel_storage_sync_duration_seconds",
    "kubelabel_storage_last_sync_count",
    "kubelabel_mlbackend_up",
    "kubelabel_http_request_duration_seconds",
    "kubelabel_project_tasks_total",
    "kubelabel_project_annotations_total",
    "kubelabel_annotations_submitted_total",
    "kubelabel_annotations_skipped_total",
    "kubelabel_reviews_total",
    "kubelabel_queue_depth",
    "kubelabel_webhook_deliveries_total",
    "kubelabel_next_task_duration_seconds",
}
