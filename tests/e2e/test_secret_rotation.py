"""A rotated Secret rolls the pods that read it, on a real control plane: the operator re-reads the
referenced Secret keys at each reconcile (the Secret watch starts one at once, the periodic resync,
3 s in these tests, is the safety net) and their keyed hash is a pod template annotation of the API
server's and the worker's Deployments. test_secret_watch_on_the_cluster.py runs without the resync."""

from __future__ import annotations

import base64
import copy
import time
from typing import Any

import pytest
from installs import example_project
from operator_process import OperatorProcess
from realcluster import Cluster, eventually

pytestmark = pytest.mark.e2e
MINIMAL = example_project()
HASH = "kubelabel.io/secrets-hash"


def secret(name: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque", "data": encoded}


def template_annotations(cluster: Cluster, namespace: str, name: str) -> dict[str, str]:
    dep = cluster.get("deployment", name, namespace)
    return (dep or {}).get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {}


def test_rotating_a_referenced_secret_rolls_api_and_worker(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.apply(
        [
            secret("db", dsn="postgresql://app:first@db/app", unrelated="x"),
            secret("cache", url="redis://cache:6379/0"),
        ],
        namespace,
    )
    body = copy.deepcopy(MINIMAL)
    body["spec"]["database"] = {"type": "postgres", "postgres": {"secretRef": {"name": "db", "key": "dsn"}}}
    body["spec"]["redis"] = {"secretRef": {"name": "cache", "key": "url"}}
    cluster.apply([body], namespace)
    names = ("sentiment-api", "sentiment-worker")
    before = {
        n: eventually(lambda n=n: template_annotations(cluster, namespace, n).get(HASH), what=f"{n} hash")
        for n in names
    }
    assert "first" not in str(before)  # the hash, not the value
    config_before = template_annotations(cluster, namespace, "sentiment-api")["kubelabel.io/config-hash"]

    # A key the pods do not read: nothing rolls (a few resyncs pass).
    cluster.apply([secret("db", dsn="postgresql://app:first@db/app", unrelated="y")], namespace)
    time.sleep(8)
    assert {n: template_annotations(cluster, namespace, n)[HASH] for n in names} == before

    # The DSN rotated: both Deployments get a new pod template, and nothing else in it changed.
    cluster.apply([secret("db", dsn="postgresql://app:second@db/app", unrelated="y")], namespace)
    after = {
        n: eventually(
            lambda n=n: (h := template_annotations(cluster, namespace, n).get(HASH)) != before[n] and h,
            timeout=30,
            what=f"{n} rolled",
        )
        for n in names
    }
    assert all(after[n] != before[n] for n in names)
    assert template_annotations(cluster, namespace, "sentiment-api")["kubelabel.io/config-hash"] == config_before
    dep = cluster.get("deployment", "sentiment-api", namespace)
    assert dep["metadata"]["generation"] >= 2
