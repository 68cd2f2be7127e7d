"""LabelingProject: provision the API server and report how it is doing."""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import ValidationError

from kubelabel_operator.builders import network_policy as netpol
from kubelabel_operator.builders import project as build
from kubelabel_operator.builders.meta import Owner
from kubelabel_operator.k8s import ApiError, K8s
from kubelabel_operator.k8s.resources import DEPLOYMENTS, INGRESSES, NETWORKPOLICIES, PDBS
from kubelabel_operator.models.labeling_project import LabelingProjectSpec
from kubelabel_operator.models.pod import NetworkPolicySpec, PodSettings, effective
from kubelabel_operator.reconcilers import admission, backup, data_volume, pods, refs
from kubelabel_operator.reconcilers.apply import ensure, key, remove
from kubelabel_operator.reconcilers.conditions import Event, Verdict
from kubelabel_operator.reconcilers.outcome import Blocked, Outcome, finish


def deployment_verdict(desired_replicas: int, deployment: dict[str, Any] | None) -> Verdict:
    """Ready when every wanted replica of the current generation is ready."""
    if desired_replicas == 0:
        return Verdict.idle("ScaledToZero", "spec.server.replicas is 0")
    if deployment is None:
        return Verdict.progressing("Creating", "creating the API server")
    status = deployment.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return Verdict.degraded("RolloutStuck", cond.get("message") or "the rollout exceeded its deadline")
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    generation = deployment.get("metadata", {}).get("generation")
    observed = status.get("observedGeneration")
    current = generation is None or (observed is not None and observed >= generation)
    if current and updated >= desired_replicas and ready >= desired_replicas:
        return Verdict.ready("Available", f"{ready}/{desired_replicas} API server replicas ready")
    reason = "RollingOut" if ready else "Starting"
    return Verdict.progressing(reason, f"{ready}/{desired_replicas} API server replicas ready")


# Verdicts read from the Deployment and its pods: a later look at them replaces these, whereas
# other Degraded reasons (a missing Secret, ...) wait for a full reconcile.
ROLLOUT_REASONS = pods.POD_REASONS | {"RolloutStuck"}


async def rollout_verdict(
    k8s: K8s, namespace: str, desired_replicas: int, deployment: dict[str, Any] | None
) -> Verdict:
    """The Deployment's verdict; while it is not available, the pods' failure (if any) names the cause."""
    verdict = deployment_verdict(desired_replicas, deployment)
    if deployment is None or verdict.state in ("ready", "idle"):
        return verdict
    failure = await pods.deployment_failure(k8s, namespace, deployment)
    return verdict if failure is None else Verdict.degraded(failure.reason, failure.message)


def _base_status(owner: Owner) -> dict[str, Any]:
    return {
        "endpoint": build.endpoint(owner.name, owner.namespace),
        "adminTokenSecret": build.admin_secret_name(owner.name),
    }


async def reconcile_project(
    k8s: K8s,
    body: dict[str, Any],
    image: str,
    now: str,
    *,
    pod_defaults: PodSettings | None = None,
    network_defaults: NetworkPolicySpec | None = None,
    operator_peer: dict[str, Any] | None = None,
) -> Outcome:
    """`pod_defaults`, `network_defaults`, `operator_peer`: the operator's settings of those names."""
    owner = Owner.from_body(body)
    try:
        spec = LabelingProjectSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        msg = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return finish(body, Verdict.degraded("InvalidSpec", msg), _base_status(owner), now)
    children: dict[str, str] = {}
    volume_events: list[Event] = []
    backups = backup.State()
    try:
        xml = await refs.label_config(k8s, owner.namespace, spec)
        try:
            # Admission checks an inline config; one from a ConfigMap may change after it. A config the
            # API server would refuse at start is never rolled out (the running pods keep the last one).
            admission.check_label_config(xml, "spec.labelConfig")
        except admission.Refused as exc:
            raise Blocked("InvalidLabelConfig", str(exc)) from None
        secret_values = await refs.project_secrets(k8s, owner.namespace, spec)
        # Generated once; `create_only` keeps the token stable across every later reconcile.
        token_secret = build.admin_token_secret(owner, secrets.token_hex(32))
        children[key(token_secret)], token = await ensure(k8s, token_secret, create_only=True)
        digest = build.secrets_hash(secret_values, refs.secret_value(token, build.TOKEN_KEY) or owner.uid)
        wanted = [build.config_map(owner, spec, xml)]
        claim = None
        if spec.database.type == "sqlite":
            claim, state, volume_events = await data_volume.ensure_data_volume(k8s, owner, spec)
            children[f"PersistentVolumeClaim/{claim}"] = state
        # With spec.restoreFrom the API server first starts on the restored database, never before.
        await backup.restore_first(k8s, owner, spec, image, claim, body, backups, children, pod_defaults)
        config_hash = build.config_hash(spec, xml)
        wanted.append(build.deployment(owner, spec, image, config_hash, claim, digest, pod_defaults))
        wanted.append(build.service(owner, spec))
        ingress = build.ingress(owner, spec)
        if ingress is not None:
            wanted.append(ingress)
        budget = build.disruption_budget(owner, spec)
        if budget is not None:
            wanted.append(budget)
        worker = build.worker_deployment(owner, spec, image, config_hash, digest, pod_defaults)
        if worker is not None:
            wanted.append(worker)
        policy = effective(spec.network_policy, network_defaults) or NetworkPolicySpec()
        network = netpol.network_policy(owner, policy, operator_peer or {})
        if network is not None:
            wanted.append(network)
        deployment: dict[str, Any] | None = None
        for child in wanted:
            children[key(child)], actual = await ensure(k8s, child)
            if key(child) == f"Deployment/{build.api_name(owner.name)}":
                deployment = actual
        if ingress is None and await remove(k8s, INGRESSES, owner.namespace, build.api_name(owner.name), owner.uid):
            children[f"Ingress/{build.api_name(owner.name)}"] = "deleted"
        if budget is None and await remove(k8s, PDBS, owner.namespace, build.api_name(owner.name), owner.uid):
            children[f"PodDisruptionBudget/{build.api_name(owner.name)}"] = "deleted"
        if network is None and await remove(k8s, NETWORKPOLICIES, owner.namespace, netpol.name(owner.name), owner.uid):
            children[f"NetworkPolicy/{netpol.name(owner.name)}"] = "deleted"
        if worker is None and await remove(k8s, DEPLOYMENTS, owner.namespace, build.worker_name(owner.name), owner.uid):
            children[f"Deployment/{build.worker_name(owner.name)}"] = "deleted"
        await backup.keep_backups(k8s, owner, spec, image, claim, body, backups, children, pod_defaults)
        if children.get(f"Deployment/{build.api_name(owner.name)}") == "updated":
            verdict = Verdict.progressing("RollingOut", "the API server is rolling out a new spec")
        else:
            verdict = await rollout_verdict(k8s, owner.namespace, spec.server.replicas, deployment)
    except Blocked as exc:
        verdict = Verdict.degraded(exc.reason, exc.message)
    except backup.Restoring as exc:
        verdict = exc.verdict
    except ApiError as exc:
        if exc.status != 403:
            raise
        # The RBAC the operator runs with lacks a verb: say so where the user looks (a retry cannot
        # help; the next resync tries again once the role is fixed).
        verdict = Verdict.degraded("Forbidden", f"the operator's role does not allow it: {exc.message[:400]}")
    outcome = finish(body, verdict, _base_status(owner), now, children)
    outcome.events[:0] = volume_events
    return backup.apply(outcome, backups, body, now)


async def refresh_project_status(
    k8s: K8s, body: dict[str, Any], deployment: dict[str, Any] | None, now: str
) -> Outcome:
    """Status only, from the Deployment's current state and its pods (when the Deployment changes)."""
    owner = Owner.from_body(body)
    try:
        spec = LabelingProjectSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return finish(body, Verdict.degraded("InvalidSpec", "the spec is invalid"), _base_status(owner), now)
    previous = (body.get("status") or {}).get("conditions") or []
    degraded = next((c for c in previous if c.get("type") == "Degraded" and c.get("status") == "True"), None)
    if degraded is not None and degraded.get("reason") not in ROLLOUT_REASONS:
        # A blocking problem (missing Secret, ...) is cleared by a full reconcile, not by a pod.
        return finish(body, Verdict.degraded(degraded["reason"], degraded.get("message", "")), {}, now)
    verdict = await rollout_verdict(k8s, owner.namespace, spec.server.replicas, deployment)
    return finish(body, verdict, _base_status(owner), now)


async def check_rollout(k8s: K8s, body: dict[str, Any], now: str) -> Outcome | None:
    """Between resyncs, a project that is not Ready is looked at again: a crash loop or an image that
    cannot be pulled changes nothing in the Deployment, so no Deployment event would report it.
    None when the project is Ready (nothing to look at)."""
    ready = next((c for c in (body.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is not None and ready.get("status") == "True":
        return None
    owner = Owner.from_body(body)
    deployment = await k8s.get(DEPLOYMENTS, owner.namespace, build.api_name(owner.name))
    if deployment is None:
        return None  # not created yet: the reconcile that creates it reports
    return await refresh_project_status(k8s, body, deployment, now)
