"""A LabelingProject's SQLite PVC: created, taken over from a deleted project, kept to the deletion policy.

The PVC is a child like no other: it holds every annotation. With `deletionPolicy: Retain` (the
default) it never carries an owner reference, so nothing that deletes the project reaches it, and it
is labelled `kubelabel.io/retained-from: <project>` for a later project of that name (or one with
`spec.adoptFrom`) to find. With `Delete` it is owned by the project and goes with it.
"""

from __future__ import annotations

from typing import Any

from kubelabel_operator.builders import project as build
from kubelabel_operator.builders.meta import (
    MANAGED_BY,
    PROJECT_LABEL,
    RETAINED_FROM_LABEL,
    RETAINED_UID_ANNOTATION,
    Owner,
)
from kubelabel_operator.k8s import ApiError, K8s
from kubelabel_operator.k8s.resources import PROJECTS, PVCS
from kubelabel_operator.models.labeling_project import LabelingProjectSpec
from kubelabel_operator.reconcilers.conditions import Event
from kubelabel_operator.reconcilers.outcome import Blocked


def _meta(obj: dict[str, Any], field: str) -> dict[str, Any]:
    return obj.get("metadata", {}).get(field) or {}


async def retained(k8s: K8s, namespace: str, project: str) -> list[dict[str, Any]]:
    """PVCs labelled as retained from `project` (by name), oldest first."""
    found = await k8s.list(PVCS, namespace, {RETAINED_FROM_LABEL: project})
    live = [p for p in found if not p["metadata"].get("deletionTimestamp")]
    return sorted(live, key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]))


async def _check_free(k8s: K8s, owner: Owner, pvc: dict[str, Any]) -> None:
    """Refuse a PVC that another live project (or someone else) uses."""
    name = pvc["metadata"]["name"]
    controllers = [r for r in pvc["metadata"].get("ownerReferences") or [] if r.get("controller")]
    if any(r.get("uid") != owner.uid for r in controllers):
        raise Blocked("NameConflict", f"PersistentVolumeClaim {name!r} already exists and is owned by another object")
    if not controllers and _meta(pvc, "labels").get("app.kubernetes.io/managed-by") != MANAGED_BY:
        raise Blocked("NameConflict", f"PersistentVolumeClaim {name!r} already exists and is not managed by kubelabel")
    user_uid = _meta(pvc, "annotations").get(RETAINED_UID_ANNOTATION)
    source = _meta(pvc, "labels").get(RETAINED_FROM_LABEL)
    if controllers or not user_uid or user_uid == owner.uid or not source:
        return
    other = await k8s.get(PROJECTS, owner.namespace, source)
    alive = other is not None and not other["metadata"].get("deletionTimestamp")
    if alive and other is not None and other["metadata"].get("uid") == user_uid:
        raise Blocked(
            "VolumeInUse",
            f"PersistentVolumeClaim {name!r} holds the data of LabelingProject {source!r}, which still exists;"
            " delete that project first (its deletionPolicy Retain keeps the volume)",
        )


def _ours(owner: Owner, pvc: dict[str, Any]) -> bool:
    if any(r.get("uid") == owner.uid for r in pvc["metadata"].get("ownerReferences") or []):
        return True
    return _meta(pvc, "annotations").get(RETAINED_UID_ANNOTATION) == owner.uid


def _converged(desired: dict[str, Any], actual: dict[str, Any]) -> bool:
    labels, annotations = _meta(actual, "labels"), _meta(actual, "annotations")
    for k, v in desired["labels"].items():
        if k in labels if v is None else labels.get(k) != v:
            return False
    if any(annotations.get(k) != v for k, v in desired["annotations"].items()):
        return False
    refs = actual["metadata"].get("ownerReferences") or []
    if desired["ownerReferences"] is None:
        return not refs
    return [r.get("uid") for r in refs] == [r["uid"] for r in desired["ownerReferences"]]


async def ensure_data_volume(k8s: K8s, owner: Owner, spec: LabelingProjectSpec) -> tuple[str, str, list[Event]]:
    """The claim the API server mounts: (its name, created|adopted|updated|unchanged, Events to post)."""
    desired = build.data_pvc(owner, spec)
    assert desired is not None, "only for SQLite projects"
    actual = await k8s.get(PVCS, owner.namespace, build.pvc_name(owner.name))
    if actual is None and spec.adopt_from:
        # Taken over on an earlier reconcile (it now carries this project's labels), or still to take.
        mine = [p for p in await k8s.list(PVCS, owner.namespace, {PROJECT_LABEL: owner.name}) if _ours(owner, p)]
        candidates = mine or await retained(k8s, owner.namespace, spec.adopt_from)
        if not candidates:
            raise Blocked(
                "RetainedVolumeMissing",
                f"spec.adoptFrom: no PersistentVolumeClaim labelled {RETAINED_FROM_LABEL}={spec.adopt_from}"
                f" in namespace {owner.namespace!r}",
            )
        actual = candidates[0]
    if actual is None:
        try:
            await k8s.create(PVCS, owner.namespace, desired)
            return build.pvc_name(owner.name), "created", []
        except ApiError as exc:
            if exc.status != 409:
                raise
            actual = await k8s.get(PVCS, owner.namespace, build.pvc_name(owner.name))
            if actual is None:
                raise
    name = actual["metadata"]["name"]
    await _check_free(k8s, owner, actual)
    adopted = not _ours(owner, actual)
    meta = build.data_pvc_metadata(owner, spec, name)
    if _converged(meta, actual):
        return name, "unchanged", []
    # Most of a PVC's spec is immutable (size changes are left to the user): only its metadata moves.
    await k8s.patch(PVCS, owner.namespace, name, {"metadata": meta})
    if not adopted:
        return name, "updated", []
    source = _meta(actual, "labels").get(RETAINED_FROM_LABEL) or "an earlier project"
    message = f"took over PersistentVolumeClaim {name!r} retained from LabelingProject {source!r}, with its data"
    return name, "adopted", [Event("Normal", "VolumeAdopted", message)]


async def kept_after_deletion(k8s: K8s, body: dict[str, Any]) -> dict[str, Any] | None:
    """The PVC a just-deleted Retain project left behind (None for Delete, PostgreSQL, or none found)."""
    meta = body["metadata"]
    try:
        spec = LabelingProjectSpec.model_validate(body.get("spec") or {})
    except ValueError:
        return None
    if spec.database.type != "sqlite" or spec.deletion_policy != "Retain":
        return None
    for pvc in await retained(k8s, meta["namespace"], meta["name"]):
        if _meta(pvc, "annotations").get(RETAINED_UID_ANNOTATION) == meta.get("uid"):
            return pvc
    return None
