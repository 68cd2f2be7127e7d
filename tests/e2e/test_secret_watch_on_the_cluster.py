"""The operator's watch on Secrets, on a real control plane, with the periodic resync an hour away:
a rotated DSN rolls the API server's Deployment within seconds, a Secret nobody names changes
nothing, and a StorageConnection blocked on a missing credentials Secret recovers when it appears."""

from __future__ import annotations

import base64
import copy
import time
from pathlib import Path
from typing import Any

import pytest
from installs import example_project
from operator_process import OperatorProcess
from realcluster import Cluster, condition, eventually

pytestmark = pytest.mark.e2e
HASH = "kubelabel.io/secrets-hash"
PROMPTLY = 10.0  # seconds; the resync is 3600


@pytest.fixture
def operator_env() -> dict[str, str]:
    return {"KUBELABEL_OPERATOR_RESYNC_INTERVAL_SECONDS": "3600"}


def secret(name: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque", "data": encoded}


def rss_mib(operator: OperatorProcess) -> float:
    assert operator.process is not None
    status = Path(f"/proc/{operator.process.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


def secrets_hash(cluster: Cluster, namespace: str) -> str | None:
    dep = cluster.get("deployment", "sentiment-api", namespace) or {}
    annotations = dep.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {}
    return annotations.get(HASH)


def test_a_rotated_secret_rolls_the_deployment_without_waiting_for_the_resync(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.apply([secret("db", dsn="postgresql://app:first@db/app")], namespace)
    body = copy.deepcopy(example_project())
    body["spec"]["database"] = {"type": "postgres", "postgres": {"secretRef": {"name": "db", "key": "dsn"}}}
    cluster.apply([body], namespace)
    before = eventually(lambda: secrets_hash(cluster, namespace), what="the secrets hash")
    generation = cluster.get("deployment", "sentiment-api", namespace)["metadata"]["generation"]

    # Secrets no resource names (300 of them, written at once): ignored, nothing rolls.
    rss_before = rss_mib(operator)
    cluster.apply([secret(f"unrelated-{i}", x="1") for i in range(300)], namespace)
    time.sleep(3)
    assert cluster.get("deployment", "sentiment-api", namespace)["metadata"]["generation"] == generation
    print(f"operator RSS {rss_before:.0f} MiB -> {rss_mib(operator):.0f} MiB after 300 unrelated Secrets")

    started = time.monotonic()
    cluster.apply([secret("db", dsn="postgresql://app:second@db/app")], namespace)
    after = eventually(lambda: (h := secrets_hash(cluster, namespace)) != before and h, timeout=PROMPTLY, what="rolled")
    elapsed = time.monotonic() - started
    print(f"rotated Secret -> new pod template in {elapsed:.2f} s")
    assert after != before
    assert "Secret changed: reconciling LabelingProject sentiment" in operator.output()


def test_a_storage_waiting_for_its_secret_recovers_when_it_appears(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.apply([example_project()], namespace)
    storage = {
        "apiVersion": "kubelabel.io/v1alpha1",
        "kind": "StorageConnection",
        "metadata": {"name": "photos"},
        "spec": {
            "projectRef": {"name": "sentiment"},
            "provider": "s3",
            "bucket": "photos",
            "credentialsSecretRef": {"name": "photos-s3"},
        },
    }
    cluster.apply([storage], namespace)
    eventually(
        lambda: condition(cluster.get("lstore", "photos", namespace), "Degraded").get("reason") == "SecretMissing",
        what="SecretMissing",
    )
    assert cluster.get("job", "photos-sync-1", namespace) is None
    cluster.apply([secret("photos-s3", AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b")], namespace)
    eventually(lambda: cluster.get("job", "photos-sync-1", namespace), timeout=PROMPTLY, what="the sync Job")
