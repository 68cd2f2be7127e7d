"""The generated CRDs: in sync with the models, structural, and rejecting bad objects readably."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubelabel_operator.crdgen import KINDS, render_crd, write_crds
from kubelabel_operator.models import LabelingProjectSpec, MLBackendSpec, StorageConnectionSpec
from operator_crd_validation import validate
from pydantic import ValidationError

from tests.support.crd_transitions import BAD, TRANSITIONS, Transition, cases, storage

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "manifests" / "examples"
MODELS = {
    "LabelingProject": LabelingProjectSpec,
    "StorageConnection": StorageConnectionSpec,
    "MLBackend": MLBackendSpec,
}


def custom_resources() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d and d["apiVersion"].startswith("kubelabel.io/")]
    return docs


def test_committed_crds_match_the_models(tmp_path: Path) -> None:
    written = write_crds(tmp_path)
    assert [p.name for p in written] == [
        "labelingprojects.kubelabel.io.yaml",
        "storageconnections.kubelabel.io.yaml",
        "mlbackends.kubelabel.io.yaml",
    ]
    for kind in KINDS:
        committed = ROOT / "crds" / f"{kind.crd_name}.yaml"
        assert committed.read_text() == render_crd(kind), (
            f"{committed} is stale: run `kubelabel crds --out crds/` and commit the result"
        )


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = []
    if isinstance(node, dict):
        out.append((path, node))
        for name, sub in (node.get("properties") or {}).items():
            out += _walk(sub, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            out += _walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            out += _walk(node["additionalProperties"], f"{path}{{}}")
    return out


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural_and_documented(kind: Any) -> None:
    crd = yaml.safe_load((ROOT / "crds" / f"{kind.crd_name}.yaml").read_text())
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["categories"] == ["kubelabel"]
    assert crd["spec"]["names"]["shortNames"] == kind.short_names
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Age"]["type"] == "date" and columns["Message"]["priority"] == 1
    schema = version["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert not {"anyOf", "oneOf", "$ref", "allOf", "title"} & set(node), path
        assert node.get("additionalProperties") is not False, path
    spec = schema["properties"]["spec"]
    for path, node in _walk(spec)[1:]:
        if not path.endswith("{}") and not path.endswith("[]"):
            assert node.get("description"), f"spec{path} has no description"
    conditions = schema["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    # A LabelingProject also reports its backups and its restore.
    extra = ["BackedUp", "Restored"] if crd["spec"]["names"]["kind"] == "LabelingProject" else []
    assert conditions["items"]["properties"]["type"]["enum"] == ["Ready", "Progressing", "Degraded", *extra]


def test_project_columns_and_rules() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "labelingprojects.kubelabel.io.yaml").read_text())
    version = crd["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"] if "priority" not in c] == [
        "Ready",
        "Endpoint",
        "Tasks",
        "Labeled",
        "Age",
    ]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    # Spelled out: the real API server checks a default against the CEL rules without defaulting inside it.
    assert spec["properties"]["server"]["default"] == {
        "replicas": 1,
        "imagePullPolicy": "IfNotPresent",
        "serviceType": "ClusterIP",
    }
    assert spec["properties"]["database"]["default"]["type"] == "sqlite"
    assert spec["properties"]["server"]["properties"]["replicas"]["default"] == 1
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert "self.server.replicas <= 1 || self.database.type == 'postgres'" in rules


@pytest.mark.parametrize("obj", custom_resources(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_examples_are_accepted(obj: dict[str, Any]) -> None:
    assert validate(obj) == []
    MODELS[obj["kind"]].model_validate(obj["spec"])


@pytest.mark.parametrize(("case", "obj", "reason"), BAD, ids=[b[0] for b in BAD])
def test_bad_objects_are_rejected_with_a_readable_reason(case: str, obj: dict[str, Any], reason: str) -> None:
    errors = validate(copy.deepcopy(obj))
    assert any(reason in e for e in errors), errors


@pytest.mark.parametrize(
    ("case", "obj", "reason"),
    [b for b in BAD if "unknown field" not in b[0]],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_models_enforce_the_same_rules(case: str, obj: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError):
        MODELS[obj["kind"]].model_validate(obj["spec"])


def test_good_cron_and_macros_pass() -> None:
    for schedule in ["*/15 * * * *", "0 3 * * 1-5", "@hourly"]:
        assert validate(storage(schedule=schedule)) == []


@pytest.mark.parametrize("case", cases(), ids=[t.name for t in TRANSITIONS])
def test_updates_of_immutable_fields_are_refused_naming_the_field(case: Transition) -> None:
    assert validate(copy.deepcopy(case.new)) == [], "created from scratch, the new object is valid"
    errors = validate(case.new, old=case.old)
    if case.refused_with is None:
        assert errors == []
    else:
        assert len(errors) == 1 and case.refused_with in errors[0], errors
        field = case.refused_with.split()[0]  # spec.x.y
        assert errors[0].startswith(f"{field}: "), "the fieldPath points at the field"


def test_every_transition_rule_is_covered_by_a_refused_case() -> None:
    refused = {t.refused_with for t in TRANSITIONS if t.refused_with}
    for kind in KINDS:
        crd = yaml.safe_load((ROOT / "crds" / f"{kind.crd_name}.yaml").read_text())
        spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        for rule in spec["x-kubernetes-validations"]:
            if "oldSelf" in rule["rule"]:
                assert any(r in rule["message"] for r in refused), f"{kind.kind}: no case for {rule['rule']}"
