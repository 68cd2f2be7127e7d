"""MLBackend: run it (managed) or point at it (external), health-check it, register it with the project."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from api_server.common import egress
from kubelabel_operator.builders import mlbackend as build
from kubelabel_operator.builders.meta import Owner
from kubelabel_operator.k8s import K8s
from kubelabel_operator.k8s.resources import DEPLOYMENTS, PVCS, SERVICES
from kubelabel_operator.models.ml_backend import MLBackendSpec
from kubelabel_operator.models.pod import PodSettings
from kubelabel_operator.reconcilers import pods, project_api, refs
from kubelabel_operator.reconcilers.apply import ensure, key, remove
from kubelabel_operator.reconcilers.conditions import Verdict
from kubelabel_operator.reconcilers.outcome import Blocked, Outcome, finish


@dataclass(frozen=True)
class Health:
    ok: bool
    model_version: str | None
    message: str


def title(owner: Owner, spec: MLBackendSpec) -> str:
    return spec.title or f"{owner.namespace}/{owner.name}"


async def check_backend(
    http: httpx.AsyncClient, url: str, timeout: float, schema: str | None, auth: tuple[str, str] | None
) -> Health:
    """GET /health, then POST /setup for the model version (Label Studio ML backend protocol)."""
    try:
        health = await http.get(f"{url}/health", timeout=timeout, auth=auth)
        if health.status_code != 200:
            return Health(False, None, f"/health answered HTTP {health.status_code}")
        setup = await http.post(
            f"{url}/setup",
            json={"project": str(project_api.PROJECT_ID), "schema": schema or "", "extra_params": {}},
            timeout=timeout,
            auth=auth,  # type: ignore[arg-type]  # httpx's post() takes None (no auth) at run time; its signature omits it
        )
    except egress.EgressRefused as exc:  # the client is project_api.http_client (the outbound-address policy)
        return Health(False, None, f"{url} refused: {exc.reason}")
    except httpx.HTTPError as exc:
        return Health(False, None, f"{url} unreachable: {type(exc).__name__}")
    version = None
    if setup.status_code == 200:
        try:
            version = setup.json().get("model_version")
        except ValueError:
            version = None
    return Health(True, str(version) if version is not None else None, "backend healthy")


async def _auth(k8s: K8s, namespace: str, spec: MLBackendSpec) -> tuple[str, str] | None:
    if spec.auth_secret_ref is None:
        return None
    secret = await refs.require_secret(k8s, namespace, spec.auth_secret_ref.name)
    user, password = refs.secret_value(secret, "username"), refs.secret_value(secret, "password")
    if user is None or password is None:
        raise Blocked("SecretKeyMissing", f"Secret {spec.auth_secret_ref.name!r} needs username and password")
    return user, password


async def reconcile_mlbackend(
    k8s: K8s,
    http: httpx.AsyncClient,
    body: dict[str, Any],
    default_image: str,
    api_url_template: str,
    now: str,
    pod_defaults: PodSettings | None = None,
) -> Outcome:
    owner = Owner.from_body(body)
    base: dict[str, Any] = {}
    try:
        spec = MLBackendSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        msg = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return finish(body, Verdict.degraded("InvalidSpec", msg), {"ready": False}, now)
    children: dict[str, str] = {}
    deployment: dict[str, Any] | None = None
    url = build.url(owner, spec)
    base["url"] = url
    try:
        project = await refs.require_project(k8s, owner.namespace, spec.project_ref.name)
        project_spec = refs.project_spec(project)
        auth = await _auth(k8s, owner.namespace, spec)
        if spec.managed is not None:
            image = project_spec.server.image or default_image
            wanted = [build.deployment(owner, spec, image, pod_defaults), build.service(owner, spec)]
            pvc = build.models_pvc(owner, spec)
            if pvc is not None:
                children[key(pvc)], _ = await ensure(k8s, pvc, create_only=True)
            for child in wanted:
                children[key(child)], actual = await ensure(k8s, child)
                if child["kind"] == "Deployment":
                    deployment = actual
        else:
            name = build.model_name(owner.name)
            for res in (DEPLOYMENTS, SERVICES):
                if await remove(k8s, res, owner.namespace, name, owner.uid):
                    children[f"{res.kind}/{name}"] = "deleted"
            await remove(k8s, PVCS, owner.namespace, build.models_pvc_name(owner.name), owner.uid)
        try:
            schema = await refs.label_config(k8s, owner.namespace, project_spec)
        except Blocked:
            schema = None
        health = await check_backend(http, url, float(spec.timeout_seconds), schema, auth)
        base.update({"ready": health.ok, "lastHealthCheck": now, "message": health.message})
        if health.model_version is not None:
            base["modelVersion"] = health.model_version
        if not health.ok:
            # A managed backend that does not answer: its pods usually say why (crash loop, image, node).
            failure = await pods.deployment_failure(k8s, owner.namespace, deployment) if deployment else None
            if failure is None:
                verdict = Verdict.degraded("BackendUnreachable", health.message)
            else:
                base["message"] = f"{health.message}; {failure.message}"
                verdict = Verdict.degraded(failure.reason, failure.message)
        else:
            verdict = await _register(k8s, http, owner, spec, url, auth, api_url_template, base)
    except Blocked as exc:
        base["ready"] = False
        verdict = Verdict.degraded(exc.reason, exc.message)
    return finish(body, verdict, base, now, children)


async def _register(
    k8s: K8s,
    http: httpx.AsyncClient,
    owner: Owner,
    spec: MLBackendSpec,
    url: str,
    auth: tuple[str, str] | None,
    api_url_template: str,
    base: dict[str, Any],
) -> Verdict:
    api = project_api.api_url(api_url_template, owner.namespace, spec.project_ref.name)
    wanted = {
        "url": url,
        "project": project_api.PROJECT_ID,
        "title": title(owner, spec),
        "timeout": spec.timeout_seconds,
        "auto_update": spec.auto_predict,
        "extra_params": {"active_learning": spec.active_learning.strategy},
        **_auth_fields(auth),
    }
    try:
        token = await project_api.admin_token(k8s, owner.namespace, spec.project_ref.name)
        base["backendId"] = await project_api.register_backend(http, api, token, wanted)
    except project_api.ProjectApiError as exc:
        base["message"] = f"backend healthy; registration pending: {exc}"
        return Verdict.progressing("RegistrationPending", base["message"])
    base["message"] = "backend healthy and registered"
    return Verdict.ready("BackendReady", f"model version {base.get('modelVersion') or 'unknown'}")


def _auth_fields(auth: tuple[str, str] | None) -> dict[str, Any]:
    """The project API calls the backend with the same credentials the operator checks it with."""
    if auth is None:
        return {"auth_method": "NONE", "basic_auth_user": None, "basic_auth_pass": None}
    user, password = auth
    return {"auth_method": "BASIC_AUTH", "basic_auth_user": user, "basic_auth_pass": password}


async def unregister(k8s: K8s, http: httpx.AsyncClient, body: dict[str, Any], api_url_template: str) -> str:
    """Best effort on deletion: a gone project (or API) has nothing left to clean."""
    owner = Owner.from_body(body)
    try:
        spec = MLBackendSpec.model_validate(body.get("spec") or {})
        api = project_api.api_url(api_url_template, owner.namespace, spec.project_ref.name)
        token = await project_api.admin_token(k8s, owner.namespace, spec.project_ref.name)
        removed = await project_api.unregister_backend(http, api, token, title(owner, spec))
    except (ValidationError, project_api.ProjectApiError) as exc:
        return f"not unregistered: {exc}"
    return "unregistered" if removed else "was not registered"
