"""The generated CRDs on a real kube-apiserver: every CEL rule compiles (within the cost limits), every
bad object of the schema tests is refused with a message naming the field, the examples pass, and
immutable fields stay immutable. Where cel-python and the server disagree, the server wins: these
cases are the same data as tests/unit/operator's.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from realcluster import ROOT, Cluster, docs_of

from tests.support.crd_transitions import BAD, TRANSITIONS, Transition

pytestmark = pytest.mark.e2e

# Where each refusal points: the field the real server names (structural errors carry the path,
# CEL rules their fieldPath or the node they sit on).
FIELD_OF = {
    "two replicas on sqlite": "spec",
    "postgres without secret": "spec.database",
    "both label configs": "spec.labelConfig",
    "no label config source": "spec.labelConfig",
    "unknown sampling": "spec.annotation.sampling",
    "overlap zero": "spec.annotation.overlap",
    "title missing": "spec.title",
    "unknown field": "spec.replicas",
    "bad storage size": "spec.database.storageSize",
    "bad provider": "spec.provider",
    "bad cron": "spec.schedule",
    "filter glob and regex": "spec.filter",
    "export of objects": "spec",
    "managed and external": "spec",
    "neither managed nor external": "spec",
    "negative gpu": "spec.managed.gpu",
    "url without scheme": "spec.external.url",
}


def _dry_run(cluster: Cluster, obj: dict[str, Any], namespace: str) -> tuple[int, str]:
    result = cluster.run(
        "create",
        "--dry-run=server",
        "--validate=strict",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=json.dumps(obj),
        check=False,
    )
    return result.returncode, result.stderr + result.stdout


def test_every_bad_case_has_its_field() -> None:
    assert sorted(FIELD_OF) == sorted(case for case, _, _ in BAD)


@pytest.mark.parametrize(("case", "obj", "reason"), BAD, ids=[b[0] for b in BAD])
def test_bad_objects_are_refused_by_the_server_naming_the_field(
    cluster: Cluster, namespace: str, case: str, obj: dict[str, Any], reason: str
) -> None:
    code, message = _dry_run(cluster, copy.deepcopy(obj), namespace)
    assert code != 0, f"{case}: accepted by the server"
    assert FIELD_OF[case] in message, message
    if not any(word in reason for word in ("is not one of", "minimum", "required property", "Additional", "match")):
        assert reason in message, f"the CEL rule's own message: {message}"


def test_the_examples_pass_server_side_validation(cluster: Cluster, namespace: str) -> None:
    for path in sorted((ROOT / "manifests" / "examples").glob("*.yaml")):
        for obj in docs_of(path.read_text()):
            code, message = _dry_run(cluster, obj, namespace)
            assert code == 0, f"{path.name} {obj['kind']}/{obj['metadata']['name']}: {message}"


@pytest.mark.parametrize("case", TRANSITIONS, ids=[t.name for t in TRANSITIONS])
def test_updates_of_immutable_fields_on_the_server(cluster: Cluster, namespace: str, case: Transition) -> None:
    old, new = copy.deepcopy(case.old), copy.deepcopy(case.new)
    cluster.apply([old], namespace=namespace)
    result = cluster.run(
        "apply", "--server-side", "--field-manager=kubelabel-e2e", "--force-conflicts", "-n", namespace, "-f", "-",
        stdin=json.dumps(new), check=False,
    )  # fmt: skip
    if case.refused_with is None:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0, f"{case.name}: the server accepted the change"
        assert case.refused_with in result.stderr, result.stderr
