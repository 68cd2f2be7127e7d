"""The operator's admission webhook, served for real: the configuration it keeps in the (emulated)
cluster, and AdmissionReviews POSTed over HTTPS the way kube-apiserver does, trusting its caBundle."""

from __future__ import annotations

import asyncio
import base64
import ssl
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import kmock
import pytest
from k8s_emulator import Emulator
from kopf.testing import KopfRunner
from kubelabel_operator.handlers.webhook_server import ServiceWebhookServer
from kubelabel_operator.k8s import K8s
from kubelabel_operator.k8s.resources import CONFIGMAPS
from kubelabel_operator.runner import kopf_args
from kubelabel_operator.settings import get_settings
from operator_support import NS, eventually

from tests.support.net import free_port

VWC = "admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
MWC = "admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
NAME = "kubelabel.kubelabel.io"
GOOD = '<View><Text name="text" value="$text"/><Choices name="c" toName="text"><Choice value="A"/></Choices></View>'


@pytest.fixture
def webhook_port(monkeypatch: pytest.MonkeyPatch) -> int:
    port = free_port()
    monkeypatch.setenv("KUBELABEL_OPERATOR_WEBHOOK_ENABLED", "true")
    monkeypatch.setenv("KUBELABEL_OPERATOR_WEBHOOK_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBELABEL_OPERATOR_WEBHOOK_PORT", str(port))
    return port


@pytest.fixture
async def webhook_operator(webhook_port: int, kube: Emulator) -> AsyncIterator[KopfRunner]:
    """The operator with its webhook on; the emulated API serves the webhook configuration kinds."""
    verbs = {"get", "list", "watch", "create", "update", "patch", "delete"}
    for resource, kind in ((VWC, "ValidatingWebhookConfiguration"), (MWC, "MutatingWebhookConfiguration")):
        kube.resources[resource] = kmock.ResourceInfo(kind=kind, singular=kind.lower(), namespaced=False, verbs=verbs)
    get_settings.cache_clear()
    runner = KopfRunner(kopf_args([NS], False, get_settings()), timeout=30)
    runner.__enter__()
    try:
        yield runner
    finally:
        # From a worker thread: the emulated API on this loop must keep answering (see conftest).
        await asyncio.to_thread(runner.__exit__, None, None, None)
        get_settings.cache_clear()


def review(operation: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    """An AdmissionReview as kube-apiserver sends it."""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "kubelabel.io", "version": "v1alpha1", "kind": "LabelingProject"},
            "resource": {"group": "kubelabel.io", "version": "v1alpha1", "resource": "labelingprojects"},
            "requestKind": {"group": "kubelabel.io", "version": "v1alpha1", "kind": "LabelingProject"},
            "requestResource": {"group": "kubelabel.io", "version": "v1alpha1", "resource": "labelingprojects"},
            "name": obj["metadata"]["name"],
            "namespace": NS,
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": f"{operation.title()}Options"},
        },
    }


def project(label_config: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubelabel.io/v1alpha1",
        "kind": "LabelingProject",
        "metadata": {"name": "reviews", "namespace": NS},
        "spec": {"title": "Reviews", "labelConfig": label_config, **spec},
    }


def trusting(ca_bundle: str) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=base64.b64decode(ca_bundle).decode())


async def test_the_webhook_refuses_bad_label_configs_over_https(
    webhook_port: int, kube: Emulator, client: K8s, webhook_operator: KopfRunner
) -> None:
    # The operator registers its webhook, with its self-signed CA, in the configuration it manages.
    def registered() -> dict[str, Any] | None:
        config = kube.get_raw(VWC, None, NAME)
        return config if config and config.get("webhooks") else None

    config = await eventually(registered, timeout=30)
    (hook,) = config["webhooks"]
    assert hook["name"] == f"validate-project.{NAME}"
    assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
    assert hook["clientConfig"]["url"] == f"https://127.0.0.1:{webhook_port}/validate_project"
    (rule,) = hook["rules"]
    assert rule["apiGroups"] == ["kubelabel.io"] and rule["resources"] == ["labelingprojects"]
    assert sorted(rule["operations"]) == ["CREATE", "UPDATE"]
    # Kopf's managed mode keeps an empty mutating configuration beside it.
    assert not (await eventually(lambda: kube.get_raw(MWC, None, NAME), timeout=10)).get("webhooks")

    await client.create(
        CONFIGMAPS,
        NS,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"bad": "<View>"}},
    )
    # As kube-apiserver does: to the url, trusting only the caBundle (the certificate names 127.0.0.1).
    async with httpx.AsyncClient(verify=trusting(hook["clientConfig"]["caBundle"]), timeout=10) as http:

        async def answer(body: dict[str, Any]) -> dict[str, Any]:
            response = await http.post(hook["clientConfig"]["url"], json=body)
            assert response.status_code == 200, response.text
            data = response.json()
            assert data["kind"] == "AdmissionReview" and data["response"]["uid"] == body["request"]["uid"]
            return data["response"]  # type: ignore[no-any-return]

        unknown = await answer(review("CREATE", project({"inline": GOOD.replace("<Text ", "<Txet ")})))
        assert unknown["allowed"] is False
        assert unknown["status"]["code"] == 422
        assert "spec.labelConfig.inline: unknown tag <Txet>" in unknown["status"]["message"]

        dangling = await answer(review("CREATE", project({"inline": GOOD.replace('toName="text"', 'toName="x"')})))
        assert dangling["allowed"] is False
        assert '<Choices name="c"> has toName="x", but no object tag has that name' in dangling["status"]["message"]

        good = await answer(review("CREATE", project({"inline": GOOD})))
        assert good["allowed"] is True and "status" not in good

        replicas = await answer(review("CREATE", project({"inline": GOOD}, server={"replicas": 3})))
        assert replicas["allowed"] is False
        assert "more than one API server replica needs PostgreSQL" in replicas["status"]["message"]

        # An update: a changed spec is reviewed, an untouched one (finalizers, annotations) passes.
        bad = project({"inline": "<View><Nope/></View>"})
        changed = await answer(review("UPDATE", bad, project({"inline": GOOD})))
        assert changed["allowed"] is False and "unknown tag <Nope>" in changed["status"]["message"]
        untouched = await answer(review("UPDATE", {**bad, "metadata": {**bad["metadata"], "finalizers": ["x"]}}, bad))
        assert untouched["allowed"] is True

        # A ConfigMap the operator can read is checked; a missing one only warns (it may come next).
        from_map = await answer(review("CREATE", project({"configMapKeyRef": {"name": "cfg", "key": "bad"}})))
        assert from_map["allowed"] is False
        assert (
            "spec.labelConfig.configMapKeyRef (ConfigMap 'cfg', key 'bad'): label config is not well-formed XML"
            in (from_map["status"]["message"])
        )
        missing = await answer(review("CREATE", project({"configMapKeyRef": {"name": "later", "key": "x"}})))
        assert missing["allowed"] is True
        assert "ConfigMap 'later' (labelConfig) not found" in missing["warnings"][0]

        # Something else than an AdmissionReview is the API server's error, not a verdict.
        assert (await http.post(hook["clientConfig"]["url"], content=b"not json")).status_code == 400

    # Stopped cleanly, the operator takes its webhook out: nothing is refused while it is away.
    await asyncio.to_thread(webhook_operator.__exit__, None, None, None)
    assert kube.get_raw(VWC, None, NAME)["webhooks"] == []


async def test_service_mode_names_the_service_and_its_certificate_matches_it() -> None:
    """In the cluster the API server calls https://<service>.<namespace>.svc: the certificate must say so."""
    port = free_port()
    server = ServiceWebhookServer(
        service_name="kubelabel-webhook", service_namespace="kubelabel-system", service_port=443,
        addr="127.0.0.1", port=port,
    )  # fmt: skip
    seen: list[str | None] = []

    async def fn(request: Any, *, webhook: str | None = None, **_: Any) -> dict[str, Any]:
        seen.append(webhook)
        return {"response": {"allowed": True}}

    configs = server(fn)
    config = await anext(configs)
    try:
        assert "url" not in config
        assert config["service"] == {"name": "kubelabel-webhook", "namespace": "kubelabel-system", "port": 443}
        context = trusting(config["caBundle"])
        async with httpx.AsyncClient(verify=context, timeout=10) as http:
            url = f"https://127.0.0.1:{port}/validate_project"
            sni = {"sni_hostname": "kubelabel-webhook.kubelabel-system.svc"}
            response = await http.post(url, json={}, extensions=sni)
            assert response.json() == {"response": {"allowed": True}} and seen == ["validate_project"]
        # Another name is not in the certificate: a client checking it refuses the connection.
        async with httpx.AsyncClient(verify=context, timeout=10) as http:
            with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
                await http.post(url, json={}, extensions={"sni_hostname": "elsewhere.example"})
    finally:
        await configs.aclose()
