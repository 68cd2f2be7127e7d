"""The SQLite PVC and the deletion policy: the builder's metadata, and the reconcile step that creates,
keeps, adopts or refuses the volume (against an in-memory API with merge-patch semantics)."""

from __future__ import annotations

from typing import Any

import pytest
from fake_k8s import FakeK8s
from kubelabel_operator.builders import project as build
from kubelabel_operator.builders.meta import RETAINED_FROM_LABEL, RETAINED_UID_ANNOTATION, Owner
from kubelabel_operator.k8s.resources import PROJECTS, PVCS
from kubelabel_operator.models import LabelingProjectSpec
from kubelabel_operator.reconcilers.data_volume import ensure_data_volume, kept_after_deletion
from kubelabel_operator.reconcilers.outcome import Blocked

BASE = {"title": "T", "labelConfig": {"inline": "<View/>"}}


def spec(**extra: Any) -> LabelingProjectSpec:
    return LabelingProjectSpec.model_validate({**BASE, **extra})


def owner(name: str = "p", uid: str = "uid-1") -> Owner:
    return Owner(kind="LabelingProject", name=name, namespace="ns", uid=uid)


def test_retain_is_the_default_and_the_pvc_has_no_owner() -> None:
    pvc = build.data_pvc(owner(), spec())
    assert pvc is not None
    assert "ownerReferences" not in pvc["metadata"]
    assert pvc["metadata"]["labels"][RETAINED_FROM_LABEL] == "p"
    assert pvc["metadata"]["annotations"] == {RETAINED_UID_ANNOTATION: "uid-1"}


def test_delete_policy_pvc_is_owned_by_the_project() -> None:
    pvc = build.data_pvc(owner(), spec(deletionPolicy="Delete"))
    assert pvc is not None
    assert [r["uid"] for r in pvc["metadata"]["ownerReferences"]] == ["uid-1"]
    assert RETAINED_FROM_LABEL not in pvc["metadata"]["labels"]


def test_postgres_has_no_pvc_whatever_the_policy() -> None:
    db = {"type": "postgres", "postgres": {"secretRef": {"name": "db", "key": "dsn"}}}
    assert build.data_pvc(owner(), spec(database=db, deletionPolicy="Delete")) is None


def test_deletion_policy_does_not_roll_the_pods() -> None:
    assert build.config_hash(spec(), "<View/>") == build.config_hash(spec(deletionPolicy="Delete"), "<View/>")


def test_deployment_mounts_the_adopted_claim() -> None:
    dep = build.deployment(owner("new"), spec(adoptFrom="old"), "img", "h", "old-data")
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "old-data"


async def test_created_then_unchanged() -> None:
    k8s = FakeK8s()
    assert (await ensure_data_volume(k8s, owner(), spec()))[:2] == ("p-data", "created")  # type: ignore[arg-type]
    assert (await ensure_data_volume(k8s, owner(), spec()))[:2] == ("p-data", "unchanged")  # type: ignore[arg-type]
    assert k8s.patches == 0


async def test_switching_policy_moves_the_owner_reference() -> None:
    k8s = FakeK8s()
    await ensure_data_volume(k8s, owner(), spec(deletionPolicy="Delete"))  # type: ignore[arg-type]
    _, state, _ = await ensure_data_volume(k8s, owner(), spec())  # type: ignore[arg-type]
    meta = k8s.objects[("persistentvolumeclaims", "p-data")]["metadata"]
    assert state == "updated"
    assert "ownerReferences" not in meta and meta["labels"][RETAINED_FROM_LABEL] == "p"
    await ensure_data_volume(k8s, owner(), spec(deletionPolicy="Delete"))  # type: ignore[arg-type]
    meta = k8s.objects[("persistentvolumeclaims", "p-data")]["metadata"]
    assert [r["uid"] for r in meta["ownerReferences"]] == ["uid-1"]
    assert RETAINED_FROM_LABEL not in meta["labels"]


async def test_a_project_owned_pvc_from_before_the_policy_is_released() -> None:
    """An upgrade: the PVC an older operator made (owned by the project) becomes a Retain one."""
    k8s = FakeK8s()
    old = build.data_pvc(owner(), spec(deletionPolicy="Delete"))
    assert old is not None
    del old["metadata"]["annotations"]
    k8s.put(PVCS, old)
    _, state, events = await ensure_data_volume(k8s, owner(), spec())  # type: ignore[arg-type]
    assert (state, events) == ("updated", [])
    assert "ownerReferences" not in k8s.objects[("persistentvolumeclaims", "p-data")]["metadata"]


async def test_same_name_project_adopts_the_retained_volume() -> None:
    k8s = FakeK8s()
    await ensure_data_volume(k8s, owner(uid="old"), spec())  # type: ignore[arg-type]
    uid = k8s.objects[("persistentvolumeclaims", "p-data")]["metadata"]["uid"]
    name, state, events = await ensure_data_volume(k8s, owner(uid="new"), spec(deletionPolicy="Delete"))  # type: ignore[arg-type]
    meta = k8s.objects[("persistentvolumeclaims", "p-data")]["metadata"]
    assert (name, state, meta["uid"]) == ("p-data", "adopted", uid)
    assert [r["uid"] for r in meta["ownerReferences"]] == ["new"]
    assert meta["annotations"][RETAINED_UID_ANNOTATION] == "new"
    assert [e.reason for e in events] == ["VolumeAdopted"]


async def test_adopt_from_another_name_finds_it_by_label_and_keeps_it() -> None:
    k8s = FakeK8s()
    await ensure_data_volume(k8s, owner("old", "uid-old"), spec())  # type: ignore[arg-type]
    name, state, _ = await ensure_data_volume(k8s, owner("new", "uid-new"), spec(adoptFrom="old"))  # type: ignore[arg-type]
    assert (name, state) == ("old-data", "adopted")
    assert ("persistentvolumeclaims", "new-data") not in k8s.objects
    # Relabelled as the new project's: later reconciles find it again (and not a second volume).
    assert (await ensure_data_volume(k8s, owner("new", "uid-new"), spec(adoptFrom="old")))[:2] == (  # type: ignore[arg-type]
        "old-data",
        "unchanged",
    )


async def test_adopt_from_nothing_retained_blocks() -> None:
    with pytest.raises(Blocked) as caught:
        await ensure_data_volume(FakeK8s(), owner("new"), spec(adoptFrom="gone"))  # type: ignore[arg-type]
    assert caught.value.reason == "RetainedVolumeMissing" and "spec.adoptFrom" in caught.value.message


async def test_a_live_projects_volume_is_not_taken() -> None:
    k8s = FakeK8s()
    await ensure_data_volume(k8s, owner("old", "uid-old"), spec())  # type: ignore[arg-type]
    k8s.put(PROJECTS, {"metadata": {"name": "old", "uid": "uid-old"}})
    with pytest.raises(Blocked) as caught:
        await ensure_data_volume(k8s, owner("new", "uid-new"), spec(adoptFrom="old"))  # type: ignore[arg-type]
    assert caught.value.reason == "VolumeInUse"
    assert k8s.patches == 0


async def test_someone_elses_pvc_of_that_name_is_refused() -> None:
    k8s = FakeK8s()
    k8s.put(PVCS, {"metadata": {"name": "p-data", "labels": {}}})
    with pytest.raises(Blocked) as caught:
        await ensure_data_volume(k8s, owner(), spec())  # type: ignore[arg-type]
    assert caught.value.reason == "NameConflict"


async def test_kept_after_deletion_names_the_retained_pvc_only_for_retain() -> None:
    k8s = FakeK8s()
    await ensure_data_volume(k8s, owner(), spec())  # type: ignore[arg-type]
    body = {"metadata": {"name": "p", "namespace": "ns", "uid": "uid-1"}, "spec": BASE}
    kept = await kept_after_deletion(k8s, body)  # type: ignore[arg-type]
    assert kept is not None and kept["metadata"]["name"] == "p-data"
    body["spec"] = {**BASE, "deletionPolicy": "Delete"}
    assert await kept_after_deletion(k8s, body) is None  # type: ignore[arg-type]
