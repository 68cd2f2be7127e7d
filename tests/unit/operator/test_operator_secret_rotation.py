"""A rotated Secret rolls the pods: the keyed hash of the Secret keys they read, on the pod template."""

from __future__ import annotations

from kubelabel_operator.builders import project as build
from kubelabel_operator.builders.meta import Owner
from kubelabel_operator.models import LabelingProjectSpec

SPEC = LabelingProjectSpec.model_validate(
    {
        "title": "T",
        "labelConfig": {"inline": "<View/>"},
        "database": {"type": "postgres", "postgres": {"secretRef": {"name": "db", "key": "dsn"}}},
        "redis": {"secretRef": {"name": "cache", "key": "url"}},
    }
)
OWNER = Owner(kind="LabelingProject", name="p", namespace="ns", uid="u")
VALUES = [("db", "dsn", "postgresql://app:hunter2@db/app"), ("cache", "url", "redis://cache/0")]


def test_a_new_value_changes_the_hash_and_nothing_else_does() -> None:
    first = build.secrets_hash(VALUES, "token")
    assert first == build.secrets_hash(list(VALUES), "token")
    rotated = [("db", "dsn", "postgresql://app:hunter3@db/app"), VALUES[1]]
    assert build.secrets_hash(rotated, "token") != first
    assert build.secrets_hash([], "token") is None


def test_the_hash_is_keyed() -> None:
    """Without the project's admin token, the annotation cannot be used to test password guesses."""
    assert build.secrets_hash(VALUES, "token") != build.secrets_hash(VALUES, "another")


def test_api_and_worker_pod_templates_carry_it() -> None:
    digest = build.secrets_hash(VALUES, "token")
    api = build.deployment(OWNER, SPEC, "img", "h", secrets_digest=digest)
    worker = build.worker_deployment(OWNER, SPEC, "img", "h", digest)
    assert worker is not None
    for dep in (api, worker):
        assert dep["spec"]["template"]["metadata"]["annotations"]["kubelabel.io/secrets-hash"] == digest
    plain = build.deployment(OWNER, SPEC, "img", "h")
    assert "kubelabel.io/secrets-hash" not in plain["spec"]["template"]["metadata"]["annotations"]
