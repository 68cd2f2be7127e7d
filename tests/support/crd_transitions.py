"""Custom resources the API server must refuse, as data: bad objects (BAD) and updates of immutable
fields (TRANSITIONS, the CRDs' transition rules).

Each BAD case is (name, object, what the refusal says, in jsonschema's or the CEL rule's words).

Each case is (name, old object, new object, expected message fragment or None when the update
passes). The unit tests evaluate them with cel-python; a test against a real kube-apiserver
creates `old`, updates it to `new` and expects the same fragment in the refusal. Every `new`
object is valid on its own: created from scratch it passes.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

API_VERSION = "kubelabel.io/v1alpha1"


class Transition(NamedTuple):
    name: str
    old: dict[str, Any]
    new: dict[str, Any]
    refused_with: str | None


def project(name: str = "p", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "LabelingProject",
        "metadata": {"name": name},
        "spec": {"title": "T", "labelConfig": {"inline": "<View/>"}, **spec},
    }


def storage(name: str = "s", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "StorageConnection",
        "metadata": {"name": name},
        "spec": {"projectRef": {"name": "p"}, "provider": "s3", "bucket": "b", **spec},
    }


def backend(name: str = "m", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "MLBackend",
        "metadata": {"name": name},
        "spec": {"projectRef": {"name": "p"}, "external": {"url": "http://model:9090"}, **spec},
    }


POSTGRES = {"type": "postgres", "postgres": {"secretRef": {"name": "db", "key": "dsn"}}}
OTHER_POSTGRES = {"type": "postgres", "postgres": {"secretRef": {"name": "db2", "key": "dsn"}}}
BACKUP = {"schedule": "@daily", "storage": {"bucket": "s3://backups"}}
RESTORE = "s3://backups/kubelabel-backups/ns/old/20261206T031803Z-c8e53309/"

TRANSITIONS: list[Transition] = [
    # LabelingProject: the database type is chosen once.
    Transition("project sqlite to postgres", project(), project(database=POSTGRES), "spec.database.type is immutable"),
    Transition(
        "project explicit sqlite to postgres",
        project(database={"type": "sqlite"}),
        project(database=POSTGRES),
        "spec.database.type is immutable",
    ),
    Transition(
        "project postgres to sqlite",
        project(database=POSTGRES),
        project(database={"type": "sqlite"}),
        "spec.database.type is immutable",
    ),
    Transition("project default to explicit sqlite", project(), project(database={"type": "sqlite"}), None),
    Transition("project another DSN Secret", project(database=POSTGRES), project(database=OTHER_POSTGRES), None),
    Transition("project title and replicas", project(), project(title="New", server={"replicas": 0}), None),
    # LabelingProject: the volume taken over is chosen once.
    Transition("project adoptFrom set later", project(), project(adoptFrom="old"), "spec.adoptFrom is immutable"),
    Transition(
        "project adoptFrom changed", project(adoptFrom="old"), project(adoptFrom="other"), "spec.adoptFrom is immutable"
    ),
    Transition("project adoptFrom removed", project(adoptFrom="old"), project(), "spec.adoptFrom is immutable"),
    Transition("project deletionPolicy changed", project(), project(deletionPolicy="Delete"), None),
    # LabelingProject: a backup is restored only into a new project; the backup settings may change.
    Transition(
        "project restoreFrom set later",
        project(backup=BACKUP),
        project(backup=BACKUP, restoreFrom=RESTORE),
        "spec.restoreFrom is immutable",
    ),
    Transition(
        "project restoreFrom changed",
        project(backup=BACKUP, restoreFrom=RESTORE),
        project(backup=BACKUP, restoreFrom=RESTORE.replace("c8e53309", "0000ffff")),
        "spec.restoreFrom is immutable",
    ),
    Transition(
        "project restoreFrom removed",
        project(backup=BACKUP, restoreFrom=RESTORE),
        project(backup=BACKUP),
        "spec.restoreFrom is immutable",
    ),
    Transition("project backup schedule changed", project(backup=BACKUP), project(backup={**BACKUP, "keep": 3}), None),
    Transition("project backup removed", project(backup=BACKUP), project(), None),
    # StorageConnection: the project, the store, the bucket and the direction are fixed.
    Transition(
        "storage another project",
        storage(),
        storage(projectRef={"name": "q"}),
        "spec.projectRef is immutable",
    ),
    Transition("storage another provider", storage(), storage(provider="gcs"), "spec.provider is immutable"),
    Transition("storage another bucket", storage(), storage(bucket="c"), "spec.bucket is immutable"),
    Transition(
        "storage import to export",
        storage(),
        storage(direction="export", mode="tasks"),
        "spec.direction is immutable",
    ),
    Transition(
        "storage default to explicit import",
        storage(),
        storage(direction="import"),
        None,
    ),
    Transition(
        "storage prefix, endpoint, schedule, filter",
        storage(),
        storage(prefix="new/", endpoint="http://minio:9000", schedule="@hourly", filter={"glob": "*.jpg"}),
        None,
    ),
    Transition("storage sync request", storage(), storage(syncRequest="2"), None),
    # MLBackend: registered with one project for life.
    Transition(
        "backend another project",
        backend(),
        backend(projectRef={"name": "q"}),
        "spec.projectRef is immutable",
    ),
    Transition(
        "backend external to managed",
        backend(),
        {**backend(), "spec": {"projectRef": {"name": "p"}, "managed": {}}},
        None,
    ),
    Transition("backend timeout and title", backend(), backend(timeoutSeconds=30, title="Model"), None),
]


def cases() -> list[Transition]:
    """Fresh copies: a test may change the objects it gets."""
    return copy.deepcopy(TRANSITIONS)


def bare_backend(name: str = "m", **spec: Any) -> dict[str, Any]:
    """An MLBackend with neither managed nor external set."""
    obj = backend(name, **spec)
    if "external" not in spec:
        del obj["spec"]["external"]
    return obj


BAD = [
    ("two replicas on sqlite", project(server={"replicas": 2}), "more than one API server replica needs PostgreSQL"),
    ("postgres without secret", project(database={"type": "postgres"}), "needs database.postgres.secretRef"),
    (
        "both label configs",
        project(labelConfig={"inline": "<View/>", "configMapKeyRef": {"name": "c", "key": "k"}}),
        "exactly one of labelConfig.inline or labelConfig.configMapKeyRef",
    ),
    ("no label config source", project(labelConfig={}), "exactly one of labelConfig.inline"),
    ("unknown sampling", project(annotation={"sampling": "random"}), "'random' is not one of"),
    ("overlap zero", project(annotation={"overlap": 0}), "less than the minimum of 1"),
    ("title missing", {**project(), "spec": {"labelConfig": {"inline": "<View/>"}}}, "'title' is a required property"),
    ("unknown field", project(replicas=3), "Additional properties are not allowed ('replicas'"),
    ("bad storage size", project(database={"storageSize": "lots"}), "does not match"),
    ("bad provider", storage(provider="ftp"), "'ftp' is not one of ['s3', 'gcs', 'azure']"),
    ("bad cron", storage(schedule="every five minutes"), "schedule must be a cron expression"),
    ("filter glob and regex", storage(filter={"glob": "*.jpg", "regex": ".*"}), "at most one of glob or regex"),
    ("export of objects", storage(direction="export", mode="objects"), "mode must be tasks"),
    (
        "managed and external",
        bare_backend(managed={}, external={"url": "http://x"}),
        "exactly one of spec.managed or spec.external",
    ),
    ("neither managed nor external", bare_backend(), "exactly one of spec.managed or spec.external"),
    ("negative gpu", bare_backend(managed={"gpu": -1}), "less than the minimum of 0"),
    ("url without scheme", bare_backend(external={"url": "model:9090"}), "does not match '^https?://'"),
]
