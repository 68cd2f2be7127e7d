"""Placement and identity (spec.pod over the operator's defaults) on every pod template the operator
makes; dropped fields cleared by the merge patch; reserved labels refused; the NetworkPolicy; the
index from Secrets to the resources naming them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubelabel_operator.builders import mlbackend, network_policy, placement, project, storage
from kubelabel_operator.builders.meta import Owner
from kubelabel_operator.handlers import secrets
from kubelabel_operator.models import LabelingProjectSpec, MLBackendSpec, StorageConnectionSpec
from kubelabel_operator.models.pod import NetworkPolicySpec, PodSettings
from kubelabel_operator.reconcilers.conditions import is_subset
from kubelabel_operator.settings import OperatorSettings
from operator_crd_validation import validate
from pydantic import ValidationError

OWNER = Owner(kind="LabelingProject", name="p", namespace="ns", uid="u")
DEFAULTS = PodSettings.model_validate(
    {
        "imagePullSecrets": [{"name": "regcred"}],
        "nodeSelector": {"pool": "default"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "labeling", "effect": "NoSchedule"}],
        "priorityClassName": "labeling",
        "labels": {"team": "platform", "cost-center": "42"},
    }
)
OWN = {
    "nodeSelector": {"pool": "gpu"},
    "serviceAccountName": "annotator-identity",
    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}],
    "labels": {"team": "vision"},
    "annotations": {"prometheus.io/scrape": "true"},
}


def project_spec(**extra: Any) -> LabelingProjectSpec:
    return LabelingProjectSpec.model_validate(
        {
            "title": "T",
            "labelConfig": {"inline": "<View/>"},
            "database": {"type": "postgres", "postgres": {"secretRef": {"name": "db", "key": "dsn"}}},
            "redis": {"secretRef": {"name": "cache", "key": "url"}},
            "webhooks": [{"url": "https://hooks.example/x", "secretRef": {"name": "hook", "key": "k"}}],
            **extra,
        }
    )


def every_template(pod: dict[str, Any] | None, defaults: PodSettings | None) -> dict[str, dict[str, Any]]:
    """The pod template of every kind of pod the operator makes, for one spec.pod."""
    proj = project_spec(**({"pod": pod} if pod else {}))
    store = StorageConnectionSpec.model_validate(
        {"projectRef": {"name": "p"}, "provider": "s3", "bucket": "b", **({"pod": pod} if pod else {})}
    )
    scheduled = store.model_copy(update={"schedule": "@hourly"})
    model = MLBackendSpec.model_validate(
        {"projectRef": {"name": "p"}, "managed": {"gpu": 1}, **({"pod": pod} if pod else {})}
    )
    so = Owner(kind="StorageConnection", name="s", namespace="ns", uid="s")
    mo = Owner(kind="MLBackend", name="m", namespace="ns", uid="m")
    worker = project.worker_deployment(OWNER, proj, "img", "h", pod_defaults=defaults)
    assert worker is not None
    return {
        "api": project.deployment(OWNER, proj, "img", "h", pod_defaults=defaults)["spec"]["template"],
        "worker": worker["spec"]["template"],
        "sync job": storage.sync_job(so, store, "img", 1, defaults)["spec"]["template"],
        "sync cronjob": storage.sync_cronjob(so, scheduled, "img", defaults)["spec"]["jobTemplate"]["spec"]["template"],
        "model": mlbackend.deployment(mo, model, "img", defaults)["spec"]["template"],
    }


def test_defaults_reach_every_pod_template() -> None:
    for kind, template in every_template(None, DEFAULTS).items():
        spec = template["spec"]
        assert spec["imagePullSecrets"] == [{"name": "regcred"}], kind
        assert spec["nodeSelector"] == {"pool": "default"}, kind
        assert spec["priorityClassName"] == "labeling", kind
        assert spec["tolerations"][0] == {
            "key": "dedicated",
            "operator": "Equal",
            "value": "labeling",
            "effect": "NoSchedule",
        }, kind
        assert template["metadata"]["labels"]["team"] == "platform", kind
        assert "serviceAccountName" not in spec, kind
        assert spec["automountServiceAccountToken"] is False, kind


def test_a_resources_own_fields_replace_the_defaults_whole() -> None:
    for kind, template in every_template(OWN, DEFAULTS).items():
        spec, meta = template["spec"], template["metadata"]
        assert spec["nodeSelector"] == {"pool": "gpu"}, kind  # replaced, not merged with pool: default
        assert spec["serviceAccountName"] == "annotator-identity", kind
        assert spec["affinity"] == OWN["affinity"], kind
        assert spec["topologySpreadConstraints"] == OWN["topologySpreadConstraints"], kind
        assert spec["imagePullSecrets"] == [{"name": "regcred"}], kind  # not set here: the default's
        assert meta["labels"]["team"] == "vision" and "cost-center" not in meta["labels"], kind
        assert meta["annotations"]["prometheus.io/scrape"] == "true", kind


def test_the_operators_labels_and_hashes_stay_on_top() -> None:
    templates = every_template(OWN, DEFAULTS)
    assert templates["api"]["metadata"]["labels"]["app.kubernetes.io/component"] == "api"
    assert templates["worker"]["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    assert templates["worker"]["metadata"]["labels"]["team"] == "vision"
    assert "kubelabel.io/config-hash" in templates["api"]["metadata"]["annotations"]
    # The GPU taint's toleration comes after the user's, never instead of them.
    tolerations = templates["model"]["spec"]["tolerations"]
    assert tolerations[0]["key"] == "dedicated" and tolerations[-1]["key"] == "nvidia.com/gpu"


def test_no_pod_settings_change_nothing() -> None:
    """Without spec.pod or defaults the templates are what they were (the golden files hold them)."""
    for template in every_template(None, None).values():
        assert not set(template["spec"]) & set(placement.SPEC_FIELDS) - {"tolerations"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies the operator's patches."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def test_a_dropped_field_is_nulled_in_the_merge_patch() -> None:
    proj = project_spec(pod=OWN)
    before = project.deployment(OWNER, proj, "img", "h")
    before["spec"]["template"]["spec"]["serviceAccount"] = "annotator-identity"  # the API server's twin
    after = project.deployment(OWNER, project_spec(), "img", "h")
    patch = copy.deepcopy(after)
    placement.clear_dropped(patch, before)
    spec = patch["spec"]["template"]["spec"]
    for field in ("nodeSelector", "serviceAccountName", "serviceAccount", "affinity", "topologySpreadConstraints"):
        assert spec[field] is None, field
    assert not is_subset(patch, before)  # a patch is sent
    applied = merge_patch(before, patch)
    assert "nodeSelector" not in applied["spec"]["template"]["spec"]
    assert is_subset(patch, applied)  # and once applied, nothing more is


@pytest.mark.parametrize(
    "pod",
    [
        {"labels": {"app.kubernetes.io/component": "x"}},
        {"labels": {"kubelabel.io/project": "other"}},
        {"annotations": {"kubelabel.io/secrets-hash": "0"}},
    ],
)
def test_the_operators_keys_are_refused_in_admission_and_in_the_model(pod: dict[str, Any]) -> None:
    bodies = {
        "LabelingProject": {"title": "T", "labelConfig": {"inline": "<View/>"}},
        "StorageConnection": {"projectRef": {"name": "p"}, "provider": "s3", "bucket": "b"},
        "MLBackend": {"projectRef": {"name": "p"}, "external": {"url": "http://m"}},
    }
    for kind, spec in bodies.items():
        obj = {"apiVersion": "kubelabel.io/v1alpha1", "kind": kind, "metadata": {"name": "x"}, "spec": {**spec}}
        assert validate(obj) == [], kind
        obj["spec"]["pod"] = pod
        errors = validate(obj)
        assert errors and "must not set the operator's keys" in errors[0], (kind, errors)
    with pytest.raises(ValidationError, match="must not set the operator's keys"):
        PodSettings.model_validate(pod)


def test_sizes_are_bounded() -> None:
    obj = {
        "apiVersion": "kubelabel.io/v1alpha1",
        "kind": "LabelingProject",
        "metadata": {"name": "x"},
        "spec": {"title": "T", "labelConfig": {"inline": "<View/>"}, "pod": {}},
    }
    for pod, word in [
        ({"labels": {f"k{i}": "v" for i in range(65)}}, "labels"),
        ({"tolerations": [{"operator": "Exists"}] * 51}, "tolerations"),
        ({"nodeSelector": {"a": "x" * 64}}, "nodeSelector"),
        ({"serviceAccountName": "Not_A_Name"}, "serviceAccountName"),
        ({"tolerations": [{"operator": "Sometimes"}]}, "tolerations"),
    ]:
        obj["spec"]["pod"] = pod
        errors = validate(obj)
        assert errors and word in errors[0], (pod, errors)


def test_operator_settings_read_the_defaults_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBELABEL_OPERATOR_POD_DEFAULTS", '{"nodeSelector": {"pool": "a"}, "priorityClassName": "p"}')
    monkeypatch.setenv("KUBELABEL_OPERATOR_NETWORK_POLICY", '{"enabled": true}')
    settings = OperatorSettings()
    assert settings.pod_defaults.node_selector == {"pool": "a"}
    assert settings.network_policy.enabled is True
    monkeypatch.setenv("KUBELABEL_OPERATOR_POD_DEFAULTS", '{"labels": {"app.kubernetes.io/name": "x"}}')
    with pytest.raises(ValidationError, match="must not set the operator's keys"):
        OperatorSettings()


PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kubelabel-system"}}}


def test_the_network_policy_admits_the_operator_the_ingress_and_the_projects_pods() -> None:
    assert network_policy.network_policy(OWNER, NetworkPolicySpec(), PEER) is None
    ingress_ns = {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}
    prometheus = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    policy = NetworkPolicySpec(enabled=True, ingress_namespace_selector=ingress_ns, allow_from=[prometheus])
    obj = network_policy.network_policy(OWNER, policy, PEER)
    assert obj is not None and obj["metadata"]["name"] == "p-pods"
    spec = obj["spec"]
    assert spec["podSelector"] == {"matchLabels": {"kubelabel.io/project": "p"}}
    assert spec["policyTypes"] == ["Ingress"]
    everything, api_only = spec["ingress"]
    assert everything == {"from": [{"podSelector": {"matchLabels": {"kubelabel.io/project": "p"}}}, PEER]}
    assert api_only == {
        "from": [{"namespaceSelector": ingress_ns}, prometheus],
        "ports": [{"protocol": "TCP", "port": 8080}],
    }


def test_the_projects_network_policy_fields_win_over_the_defaults() -> None:
    from kubelabel_operator.models.pod import effective

    defaults = OperatorSettings().network_policy
    assert defaults.enabled is False
    own = project_spec(networkPolicy={"enabled": True}).network_policy
    merged = effective(own, defaults)
    assert merged.enabled is True
    assert merged.ingress_namespace_selector == {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    # A new NetworkPolicy never restarts the API server.
    xml = "<View/>"
    assert project.config_hash(project_spec(), xml) == project.config_hash(
        project_spec(networkPolicy={"enabled": True}), xml
    )


def test_the_secret_indexes_name_each_resource_under_the_secrets_it_reads() -> None:
    spec = project_spec().wire()
    assert secrets.project_secret_users(namespace="ns", name="p", spec=spec) == {
        ("ns", "db"): "p",
        ("ns", "cache"): "p",
        ("ns", "hook"): "p",
    }
    store = {"projectRef": {"name": "p"}, "provider": "s3", "bucket": "b", "credentialsSecretRef": {"name": "s3"}}
    assert secrets.storage_secret_users(namespace="ns", name="s", spec=store) == {("ns", "s3"): "s"}
    backend = {"projectRef": {"name": "p"}, "external": {"url": "http://m"}, "authSecretRef": {"name": "auth"}}
    assert secrets.mlbackend_secret_users(namespace="ns", name="m", spec=backend) == {("ns", "auth"): "m"}
    assert secrets.project_secret_users(namespace="ns", name="p", spec={"title": ""}) == {}  # invalid: nothing


def test_a_dropped_label_or_annotation_is_nulled_and_nobody_elses() -> None:
    before = project.deployment(OWNER, project_spec(pod=OWN), "img", "h")
    template = before["spec"]["template"]
    assert template["metadata"]["annotations"]["kubelabel.io/pod-metadata"] == (
        "label:team,annotation:prometheus.io/scrape"
    )
    template["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = "now"  # someone else's
    keep_team = {**OWN, "labels": {"team": "vision"}, "annotations": None}
    patch = copy.deepcopy(project.deployment(OWNER, project_spec(pod=keep_team), "img", "h"))
    placement.clear_dropped(patch, before)
    meta = patch["spec"]["template"]["metadata"]
    assert meta["annotations"]["prometheus.io/scrape"] is None
    assert meta["labels"]["team"] == "vision"
    assert "kubectl.kubernetes.io/restartedAt" not in meta["annotations"]
    assert meta["annotations"]["kubelabel.io/pod-metadata"] == "label:team"
    # Nothing of the user's left: the record goes too.
    bare = copy.deepcopy(project.deployment(OWNER, project_spec(), "img", "h"))
    placement.clear_dropped(bare, before)
    meta = bare["spec"]["template"]["metadata"]
    assert meta["labels"]["team"] is None and meta["annotations"]["kubelabel.io/pod-metadata"] is None
    applied = merge_patch(before, bare)["spec"]["template"]["metadata"]
    assert "team" not in applied["labels"] and "kubelabel.io/pod-metadata" not in applied["annotations"]
    assert applied["annotations"]["kubectl.kubernetes.io/restartedAt"] == "now"
    assert is_subset(bare, merge_patch(before, bare))


def test_a_template_never_shares_its_fields_with_the_defaults() -> None:
    defaults = PodSettings.model_validate({"affinity": {"nodeAffinity": {}}, "topologySpreadConstraints": [{}]})
    template = placement.place({"metadata": {}, "spec": {}}, None, defaults)
    template["spec"]["affinity"]["podAffinity"] = {"x": 1}
    template["spec"]["topologySpreadConstraints"][0]["maxSkew"] = 1
    assert defaults.affinity == {"nodeAffinity": {}} and defaults.topology_spread_constraints == [{}]
