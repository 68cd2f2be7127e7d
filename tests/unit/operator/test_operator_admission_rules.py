"""Admission of a LabelingProject: the label-config validator's messages, the spec rules, what passes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cryptography import x509
from kubelabel_operator.handlers.webhook_server import ServiceWebhookServer, WebhookServer, build_server
from kubelabel_operator.k8s import ApiError
from kubelabel_operator.reconcilers import admission
from kubelabel_operator.reconcilers.admission import Refused, check_label_config, review_project
from kubelabel_operator.settings import OperatorSettings

GOOD = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/></Choices>
</View>"""


def project(xml: str | None = GOOD, **spec: Any) -> dict[str, Any]:
    label_config = {"inline": xml} if xml is not None else spec.pop("label_config")
    return {
        "apiVersion": "kubelabel.io/v1alpha1",
        "kind": "LabelingProject",
        "metadata": {"name": "p", "namespace": "team"},
        "spec": {"title": "P", "labelConfig": label_config, **spec},
    }


class ConfigMaps:
    """Answers the one call the review makes (K8s.get of a ConfigMap) from a dict, or fails with `error`."""

    def __init__(self, data: dict[str, dict[str, str]] | None = None, error: ApiError | None = None) -> None:
        self.data = data or {}
        self.error = error
        self.delay = 0.0
        self.calls: list[tuple[str, str]] = []

    async def get(self, resource: Any, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append((namespace, name))
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return {"data": self.data[name]} if name in self.data else None


async def refusal(body: dict[str, Any], k8s: Any = None, old: dict[str, Any] | None = None) -> str:
    with pytest.raises(Refused) as caught:
        await review_project(k8s or ConfigMaps(), body, old)
    return str(caught.value)


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        (GOOD.replace("<Text ", "<Txet "), "spec.labelConfig.inline: unknown tag <Txet>"),
        (
            GOOD.replace('toName="text"', 'toName="body"'),
            'spec.labelConfig.inline: <Choices name="sentiment"> has toName="body", but no object tag has that name',
        ),
        (
            GOOD.replace("</Choices>", ""),
            "spec.labelConfig.inline: label config is not well-formed XML: mismatched tag",
        ),
        ("<Choices/>", "spec.labelConfig.inline: the root tag must be <View>, not <Choices>"),
    ],
    ids=["unknown-tag", "dangling-toName", "malformed-xml", "wrong-root"],
)
async def test_a_bad_label_config_is_refused_with_the_validators_message(xml: str, expected: str) -> None:
    assert expected in await refusal(project(xml))


async def test_every_problem_of_a_config_is_named() -> None:
    xml = GOOD.replace("<Text ", "<Txet ").replace("<Choice ", "<Choise ")
    message = await refusal(project(xml))
    assert "unknown tag <Txet>" in message and "unknown tag <Choise>" in message


async def test_a_good_config_passes() -> None:
    assert await review_project(ConfigMaps(), project()) == []
    check_label_config(GOOD, "here")


async def test_what_the_reconcile_would_refuse_is_refused_too() -> None:
    # More than one replica needs PostgreSQL (the operator's own model says so as well as the CRD's CEL).
    assert "spec: more than one API server replica needs PostgreSQL" in await refusal(project(server={"replicas": 2}))
    assert "spec.annotation.overlap: Input should be greater than or equal to 1" in await refusal(
        project(annotation={"overlap": 0})
    )


async def test_updates_that_leave_the_spec_alone_always_pass() -> None:
    # Finalizers and Kopf's annotations are written to projects admitted while the webhook was off:
    # refusing them would leave such a project impossible to handle or delete.
    bad = project(GOOD.replace("<Text ", "<Txet "))
    old = {**bad, "metadata": {**bad["metadata"], "finalizers": []}}
    assert await review_project(ConfigMaps(), bad, old) == []
    deleting = {**bad, "metadata": {**bad["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert await review_project(ConfigMaps(), deleting, project()) == []
    # A changed spec is reviewed.
    assert "unknown tag <Txet>" in await refusal(bad, old=project())


async def test_a_config_map_is_checked_when_it_can_be_read() -> None:
    ref = {"configMapKeyRef": {"name": "cfg", "key": "config.xml"}}
    maps = ConfigMaps({"cfg": {"config.xml": GOOD.replace("<Text ", "<Txet ")}})
    message = await refusal(project(None, label_config=ref), maps)
    assert message.startswith(
        "spec.labelConfig.configMapKeyRef (ConfigMap 'cfg', key 'config.xml'): unknown tag <Txet>"
    )
    assert maps.calls == [("team", "cfg")]
    assert await review_project(ConfigMaps({"cfg": {"config.xml": GOOD}}), project(None, label_config=ref)) == []


@pytest.mark.parametrize(
    ("maps", "warning"),
    [
        (ConfigMaps(), "ConfigMap 'cfg' (labelConfig) not found in 'team'; the project waits for it"),
        (ConfigMaps({"cfg": {"other": GOOD}}), "ConfigMap 'cfg' has no key 'config.xml'"),
        (ConfigMaps(error=ApiError(403, "forbidden")), "the operator could not read it (403: forbidden)"),
    ],
    ids=["missing", "no-key", "forbidden"],
)
async def test_a_config_map_that_cannot_be_read_only_warns(maps: ConfigMaps, warning: str) -> None:
    # It may be applied right after the project (kubectl apply -f dir/): the reconcile waits for it.
    ref = {"configMapKeyRef": {"name": "cfg", "key": "config.xml"}}
    (found,) = await review_project(maps, project(None, label_config=ref))
    assert found.startswith("spec.labelConfig.configMapKeyRef (ConfigMap 'cfg', key 'config.xml') was not checked")
    assert warning in found


async def test_a_slow_config_map_read_only_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    # The API server waits 30 s for the webhook's answer; the read gives up well before.
    monkeypatch.setattr(admission, "CONFIG_MAP_READ_SECONDS", 0.05)
    maps = ConfigMaps({"cfg": {"config.xml": "<View><Nope/></View>"}})
    maps.delay = 1.0
    ref = {"configMapKeyRef": {"name": "cfg", "key": "config.xml"}}
    (warning,) = await review_project(maps, project(None, label_config=ref))
    assert warning.endswith("was not checked: the operator could not read it within 0.05 s")


def sans(cert_pem: bytes) -> tuple[set[str], set[str]]:
    cert = x509.load_pem_x509_certificate(cert_pem)
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(ext.get_values_for_type(x509.DNSName)), {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}


def test_the_self_signed_certificate_names_every_host_but_unspecified_addresses() -> None:
    cert, key = WebhookServer.build_certificate(["kubelabel-webhook.ns.svc", "0.0.0.0", "127.0.0.1", "::1"])
    assert sans(cert) == ({"kubelabel-webhook.ns.svc"}, {"127.0.0.1", "::1"})
    parsed = x509.load_pem_x509_certificate(cert)
    assert parsed.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert b"PRIVATE KEY" in key and b"ENCRYPTED" not in key
    _, encrypted = WebhookServer.build_certificate(["127.0.0.1"], password="secret")
    assert b"ENCRYPTED PRIVATE KEY" in encrypted


def test_the_settings_choose_the_server() -> None:
    url = build_server(OperatorSettings(webhook_host="127.0.0.1", webhook_port=9555))
    assert type(url) is WebhookServer and (url.addr, url.port, url.host) == ("127.0.0.1", 9555, None)
    assert url.certfile is None
    service = build_server(
        OperatorSettings(
            webhook_mode="service",
            webhook_host="0.0.0.0",
            webhook_service_name="hook",
            webhook_service_namespace="ops",
            webhook_cert_file="/tls/tls.crt",
            webhook_key_file="/tls/tls.key",
            webhook_ca_file="/nonexistent/ca.crt",
        )
    )
    assert isinstance(service, ServiceWebhookServer) and service.host == "hook.ops.svc"
    assert {"hook", "hook.ops", "hook.ops.svc.cluster.local"} <= set(service.extra_sans)
    assert (service.certfile, service.pkeyfile, service.cafile) == ("/tls/tls.crt", "/tls/tls.key", None)
