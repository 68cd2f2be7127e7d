"""Create-or-patch of one child, with ownership checks; deletion of children no longer wanted."""

from __future__ import annotations

from typing import Any

from kubelabel_operator.builders.meta import MANAGED_BY
from kubelabel_operator.builders.placement import clear_dropped
from kubelabel_operator.k8s import ApiError, K8s
from kubelabel_operator.k8s.resources import Resource, for_object
from kubelabel_operator.reconcilers.conditions import is_subset
from kubelabel_operator.reconcilers.outcome import Blocked

_SKIP = {"apiVersion", "kind", "metadata", "status"}


def _owned_by(actual: dict[str, Any], owner_uid: str) -> bool | None:
    """True: ours; False: someone else's; None: unowned but carries our managed-by label (adopt it)."""
    refs = actual.get("metadata", {}).get("ownerReferences") or []
    if any(r.get("uid") == owner_uid for r in refs):
        return True
    if any(r.get("controller") for r in refs):
        return False
    labels = actual.get("metadata", {}).get("labels") or {}
    return None if labels.get("app.kubernetes.io/managed-by") == MANAGED_BY else False


def _patch_for(desired: dict[str, Any]) -> dict[str, Any]:
    meta = desired["metadata"]
    patch: dict[str, Any] = {
        "metadata": {k: meta[k] for k in ("labels", "annotations", "ownerReferences") if k in meta}
    }
    patch.update({k: v for k, v in desired.items() if k not in _SKIP})
    return patch


async def ensure(k8s: K8s, desired: dict[str, Any], *, create_only: bool = False) -> tuple[str, dict[str, Any]]:
    """Make the child look like `desired`. Returns (created|updated|unchanged, the object)."""
    res = for_object(desired)
    meta = desired["metadata"]
    ns, name = meta["namespace"], meta["name"]
    owner_uid = meta["ownerReferences"][0]["uid"]
    actual = await k8s.get(res, ns, name)
    if actual is None:
        try:
            return "created", await k8s.create(res, ns, desired)
        except ApiError as exc:
            _refused(exc, res.kind, name)
            if exc.status != 409:
                raise
            # Created concurrently (another worker, or before a crash): converge on it.
            actual = await k8s.get(res, ns, name)
            if actual is None:
                raise
    if _owned_by(actual, owner_uid) is False:
        raise Blocked("NameConflict", f"{res.kind} {name!r} already exists and is not managed by this resource")
    if create_only:
        return "unchanged", actual
    patch = _patch_for(desired)
    clear_dropped(patch, actual)
    if is_subset(patch, actual):
        return "unchanged", actual
    try:
        patched = await k8s.patch(res, ns, name, patch)
    except ApiError as exc:
        _refused(exc, res.kind, name)
        raise
    return "updated", patched or actual


def _refused(exc: ApiError, kind: str, name: str) -> None:
    """The API server found the child invalid (422): a Kubernetes type the spec passes through as written,
    such as spec.pod.affinity, is wrong. Retrying cannot help; the owner's status says why."""
    if exc.status == 422:
        raise Blocked("InvalidChild", f"the API server refused {kind} {name!r}: {exc.message}") from exc


async def remove(k8s: K8s, res: Resource, namespace: str, name: str, owner_uid: str) -> bool:
    """Delete a child that is no longer wanted, only when it is ours."""
    actual = await k8s.get(res, namespace, name)
    if actual is None or _owned_by(actual, owner_uid) is not True:
        return False
    return await k8s.delete(res, namespace, name)


def key(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"
