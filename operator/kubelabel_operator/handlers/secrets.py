"""A change of a Secret that a resource names reconciles that resource at once (not at the next resync).

Kopf indexes map (namespace, Secret name) to the resources naming it; the watch on Secrets looks each
event up there and ignores every other Secret. What the reconcile does with it:
- LabelingProject (database DSN, Redis URL, webhook signing keys): a new secrets hash on the pod
  template rolls the API server and worker pods;
- MLBackend (basic auth): the registration in the project is updated with the new password;
- StorageConnection (credentials): nothing to roll (sync pods mount the Secret as files and each run
  reads them afresh); a Secret that was missing is found at once.
Watching needs list and watch on Secrets; the operator can already get any Secret of the namespaces it
serves, so this reads nothing it could not read before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import kopf
from pydantic import ValidationError

from kubelabel_operator import GROUP, VERSION
from kubelabel_operator.handlers import mlbackend, pause, project, storage
from kubelabel_operator.handlers.runtime import Runtime, runtime
from kubelabel_operator.k8s import ApiError
from kubelabel_operator.k8s.resources import MLBACKENDS, PROJECTS, STORAGES, Resource
from kubelabel_operator.models import LabelingProjectSpec, MLBackendSpec, StorageConnectionSpec
from kubelabel_operator.reconcilers.refs import project_secret_refs

Reconcile = Callable[[Runtime, dict[str, Any], kopf.Logger | None], Awaitable[None]]


def _keyed(namespace: str | None, user: str | None, secrets: set[str]) -> dict[tuple[str, str], str]:
    """(namespace, Secret) -> the name of the resource naming it."""
    return {(namespace or "", secret): user or "" for secret in secrets}


@kopf.index(GROUP, VERSION, "labelingprojects", id="project_secret_users")
def project_secret_users(
    namespace: str | None, name: str | None, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], str]:
    try:
        parsed = LabelingProjectSpec.model_validate(dict(spec))
    except ValidationError:
        return {}
    return _keyed(namespace, name, {ref.name for ref in project_secret_refs(parsed)})


@kopf.index(GROUP, VERSION, "storageconnections", id="storage_secret_users")
def storage_secret_users(
    namespace: str | None, name: str | None, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], str]:
    try:
        ref = StorageConnectionSpec.model_validate(dict(spec)).credentials_secret_ref
    except ValidationError:
        return {}
    return _keyed(namespace, name, {ref.name} if ref else set())


@kopf.index(GROUP, VERSION, "mlbackends", id="mlbackend_secret_users")
def mlbackend_secret_users(
    namespace: str | None, name: str | None, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], str]:
    try:
        ref = MLBackendSpec.model_validate(dict(spec)).auth_secret_ref
    except ValidationError:
        return {}
    return _keyed(namespace, name, {ref.name} if ref else set())


async def _reconcile_users(
    rt: Runtime, res: Resource, namespace: str, names: list[str], work: Reconcile, logger: kopf.Logger
) -> None:
    for name in sorted(set(names)):
        body = await rt.k8s.get(res, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp") or pause.is_paused(body):
            continue
        logger.info("Secret changed: reconciling %s %s", res.kind, name)
        await work(rt, body, logger)


@kopf.on.event("", "v1", "secrets")  # type: ignore[arg-type]  # Kopf passes its indices by name; WatchingFn cannot list them
async def secret_changed(
    type: str | None,
    name: str | None,
    namespace: str | None,
    memo: Any,
    logger: kopf.Logger,
    project_secret_users: kopf.Index[tuple[str, str], str],
    storage_secret_users: kopf.Index[tuple[str, str], str],
    mlbackend_secret_users: kopf.Index[tuple[str, str], str],
    **_: Any,
) -> None:
    if type is None:
        return  # the initial listing: every resource is reconciled at start anyway
    key = (namespace or "", name or "")
    rt = runtime(memo)
    users = [
        (PROJECTS, project_secret_users, project.reconcile),
        (STORAGES, storage_secret_users, storage.reconcile),
        (MLBACKENDS, mlbackend_secret_users, mlbackend.reconcile),
    ]
    try:
        for res, index, work in users:
            if key in index:
                await _reconcile_users(rt, res, key[0], list(index[key]), work, logger)
    except (ApiError, kopf.TemporaryError) as exc:
        logger.warning("Secret %s changed; its users wait for the next resync: %s", name, exc)
