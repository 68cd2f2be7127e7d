"""What a real API server makes possible: bad label configs refused at `kubectl apply` by the
operator's admission webhook (the API server calls it), and pod failures that reach a project's
status with their cause (crash loop, image pull back-off, a failing migration).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from operator_process import OperatorProcess
from realcluster import ROOT, Cluster, Kubectl, condition, eventually

from tests.support.net import free_port
from tests.support.pod_states import STATES

pytestmark = pytest.mark.e2e
EXAMPLE = ROOT / "manifests" / "examples" / "01-minimal-project.yaml"
MANUAL_STATUS = "e2e.kubelabel.io/status"  # tests/cluster: kwok leaves such a pod's status alone
CONFIGURATION = "kubelabel.kubelabel.io"  # manifests/base's (its RBAC lets the operator patch only this one)


def project(name: str, config: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubelabel.io/v1alpha1",
        "kind": "LabelingProject",
        "metadata": {"name": name},
        "spec": {"title": "T", "labelConfig": {"inline": config}},
    }


GOOD = '<View><Text name="text" value="$text"/><Choices name="c" toName="text"><Choice value="A"/></Choices></View>'


@pytest.fixture
def operator(cluster: Cluster, operator_identity: Kubectl, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator with its admission webhook on 127.0.0.1 (url mode), the API server calling it."""
    proc = OperatorProcess(
        operator_identity,
        ["--namespace", namespace],
        tmp_path / "operator.log",
        env={
            "KUBELABEL_OPERATOR_WEBHOOK_ENABLED": "true",
            "KUBELABEL_OPERATOR_WEBHOOK_HOST": "127.0.0.1",
            "KUBELABEL_OPERATOR_WEBHOOK_PORT": str(free_port()),
        },
    )
    try:
        with proc:
            eventually(
                lambda: (
                    (c := cluster.get("validatingwebhookconfiguration", CONFIGURATION))
                    and any(w.get("clientConfig", {}).get("caBundle") for w in c.get("webhooks") or [])
                ),
                timeout=60,
                what="the webhook registered",
            )
            yield proc
            cluster.run("delete", "lproj", "--all", "-n", namespace, "--wait=true", "--timeout=60s", check=False)
    finally:
        # failurePolicy Fail: a webhook left registered would refuse every later project.
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            cluster.run("patch", kind, CONFIGURATION, "--type=merge", "-p", '{"webhooks":null}', check=False)
        print(proc.output()[-4000:])


def test_a_bad_label_config_is_refused_at_kubectl_apply(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    bad_tag = project("typo", GOOD.replace("<Text ", "<Txet ").replace('value="$text"/>', 'value="$text"></Txet>'))
    result = cluster.run("apply", "-n", namespace, "-f", "-", stdin=json.dumps(bad_tag), check=False)
    assert result.returncode != 0
    assert "denied the request" in result.stderr and "unknown tag <Txet>" in result.stderr, result.stderr
    assert "spec.labelConfig.inline" in result.stderr

    dangling = project("dangling", GOOD.replace('toName="text"', 'toName="nowhere"'))
    result = cluster.run("apply", "-n", namespace, "-f", "-", stdin=json.dumps(dangling), check=False)
    assert result.returncode != 0 and 'toName="nowhere"' in result.stderr, result.stderr
    assert cluster.get("lproj", "dangling", namespace) is None

    cluster.apply([project("fine", GOOD)], namespace=namespace)
    assert cluster.get("lproj", "fine", namespace)
    # An update that breaks the config is refused too; the stored object keeps the good one.
    broken = project("fine", GOOD.replace("</View>", ""))
    result = cluster.run("apply", "-n", namespace, "-f", "-", stdin=json.dumps(broken), check=False)
    assert result.returncode != 0, "a malformed update was accepted"
    assert cluster.get("lproj", "fine", namespace)["spec"]["labelConfig"]["inline"] == GOOD


FAILURES = [s for s in STATES if s.name in {"crash loop", "image pull back-off", "migration failed"}]


@pytest.mark.parametrize("state", FAILURES, ids=[s.name for s in FAILURES])
def test_a_failing_pod_reaches_the_status_with_its_cause(
    cluster: Cluster, namespace: str, operator: OperatorProcess, state: Any
) -> None:
    cluster("apply", "-n", namespace, "-f", str(EXAMPLE))
    eventually(
        lambda: condition(cluster.get("lproj", "sentiment", namespace), "Ready").get("status") == "True", timeout=90
    )
    pod = cluster.list("pods", namespace, selector="kubelabel.io/project=sentiment,app.kubernetes.io/component=api")[0]
    name = pod["metadata"]["name"]
    # What the kubelet would write: kwok is told to leave this pod alone, then its status is patched.
    cluster("annotate", "pod", name, "-n", namespace, f"{MANUAL_STATUS}=manual")
    failing = state.make(name, {"metadata": pod["metadata"], "spec": pod["spec"]})["status"]
    cluster(
        "patch",
        "pod",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": failing}),
    )

    project_obj = eventually(
        lambda: (
            (p := cluster.get("lproj", "sentiment", namespace))
            and condition(p, "Ready").get("reason") == state.reason
            and p
        ),
        timeout=60,
        what=f"{state.reason} in status",
    )
    ready = condition(project_obj, "Ready")
    assert ready["status"] == "False"
    for fragment in state.message_fragments:
        assert fragment in ready["message"], ready["message"]
    assert "s3cr3t" not in json.dumps(project_obj["status"]), "a credential in the pod's log reached the status"
    events = cluster.list("events", namespace)
    assert any(
        e["type"] == "Warning" and e["reason"] == state.reason and e["involvedObject"]["kind"] == "LabelingProject"
        for e in events
    )
