"""The data model: every table of the API server, in one place.

Rows never leave the service layer as-is: routers return pydantic schemas built from them.
Counters on tasks (total_annotations, ...) are maintained by the services that change
annotations and predictions, so lists and the next-task query never aggregate per request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from api_server.db.base import Base, JSONDoc, JSONText, UTCDateTime, utcnow

# SQLite only auto-increments INTEGER PRIMARY KEY; BigInteger elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=utcnow, nullable=False)


def _updated() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)


# --- users and access -------------------------------------------------------------------


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True, nullable=False)
    email: Mapped[str] = mapped_column(String(254), default="", nullable=False)
    first_name: Mapped[str] = mapped_column(String(150), default="", nullable=False)
    last_name: Mapped[str] = mapped_column(String(150), default="", nullable=False)
    # Organisation-wide role: admin sees and changes everything; others act through memberships.
    role: Mapped[str] = mapped_column(String(20), default="annotator", nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    # Argon2id hash (api_server/auth/passwords.py); NULL: no password, the user signs in with tokens only.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class AuthSession(Base):
    """A signed-in browser session; only the SHA-256 of the cookie's random id is stored."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)


class ApiToken(Base):
    """An API token; only its SHA-256 is stored, the key is shown once at creation."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    prefix: Mapped[str] = mapped_column(String(8), nullable=False)
    name: Mapped[str] = mapped_column(String(100), default="default", nullable=False)
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProjectMember(Base):
    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    # manager | reviewer | annotator | viewer
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    created_at: Mapped[datetime] = _created()


# --- projects and tasks -----------------------------------------------------------------


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    label_config: Mapped[str] = mapped_column(Text, default="<View></View>", nullable=False)
    expert_instruction: Mapped[str] = mapped_column(Text, default="", nullable=False)
    show_instruction: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    show_skip_button: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    enable_empty_annotation: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    show_annotation_history: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # Annotations wanted per task (Label Studio's "overlap").
    maximum_annotations: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    overlap_cohort_percentage: Mapped[int] = mapped_column(Integer, default=100, nullable=False)
    show_overlap_first: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    sampling: Mapped[str] = mapped_column(String(40), default="Sequential sampling", nullable=False)
    skip_queue: Mapped[str] = mapped_column(String(30), default="REQUEUE_FOR_OTHERS", nullable=False)
    review_required: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    task_lock_ttl: Mapped[int | None] = mapped_column(Integer)
    model_version: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    min_annotations_to_start_training: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    start_training_on_annotation_update: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    evaluate_predictions_automatically: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    color: Mapped[str] = mapped_column(String(16), default="#FFFFFF", nullable=False)
    is_published: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    is_draft: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    control_weights: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict, nullable=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class FileUpload(Base):
    __tablename__ = "file_uploads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    file: Mapped[str] = mapped_column(String(500), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    created_at: Mapped[datetime] = _created()


class MediaFile(Base):
    """An uploaded media file, served at /data/upload/{project_id}/{name} (api_server/media).

    `name` is generated (the original name is kept for display); the bytes sit in the data
    directory, or in the import storage `storage_id` under `key`.
    """

    __tablename__ = "media_files"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_media_files_project_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    file_upload_id: Mapped[int | None] = mapped_column(ForeignKey("file_uploads.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    original_name: Mapped[str] = mapped_column(String(500), default="", nullable=False)
    content_type: Mapped[str] = mapped_column(String(100), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    storage_id: Mapped[int | None] = mapped_column(ForeignKey("import_storages.id", ondelete="SET NULL"))
    key: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = _created()


class IdempotencyKey(Base):
    """An import done under a client's `Idempotency-Key`: a retry with the same key answers `response`.

    Written in the import's own transaction, so a key exists exactly when its import does.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("user_id", "project_id", "scope", "key", name="uq_idempotency_keys_user_project_scope_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True)
    # The endpoint: import | predictions.
    scope: Mapped[str] = mapped_column(String(20), nullable=False)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    # SHA-256 of the request (query and body): the same key with another request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    # The response body as sent (text, so a replay is byte for byte the same; JSONB reorders keys).
    response: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _created()


# Open tasks, as each database's queries spell it (SQLAlchemy writes `NOT x` as `x = 0` on SQLite).
_OPEN = text("NOT is_labeled")
_OPEN_SQLITE = text("is_labeled = 0")


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_project_id_id", "project_id", "id"),
        # The next-task queue walks open tasks in order: by inner_id (import order; it grows with id
        # in a project), or by prediction score (uncertainty). Only open tasks are in these indexes,
        # and the primary key gives neither order, so the walk starts at the first open task. (By id,
        # PostgreSQL walked the primary key instead while its statistics had seen no labeled task,
        # reading every labeled task before the first open one: 1,500 rows per annotation in the
        # benchmark.) Queries name the same condition (`~Task.is_labeled`), so both databases use them.
        Index("ix_tasks_queue", "project_id", "inner_id", "id", postgresql_where=_OPEN, sqlite_where=_OPEN_SQLITE),
        Index(
            "ix_tasks_queue_score",
            "project_id",
            "prediction_score",
            "id",
            postgresql_where=_OPEN,
            sqlite_where=_OPEN_SQLITE,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    inner_id: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONDoc, nullable=False)
    meta: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict, nullable=False)
    # new | in_progress | completed | accepted | rejected | skipped  (see workflow state machine)
    state: Mapped[str] = mapped_column(String(20), default="new", nullable=False)
    is_labeled: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    overlap: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    total_annotations: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    cancelled_annotations: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    total_predictions: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # Score of the newest prediction (lower = less certain): drives uncertainty sampling.
    prediction_score: Mapped[float | None] = mapped_column(Float)
    file_upload_id: Mapped[int | None] = mapped_column(ForeignKey("file_uploads.id", ondelete="SET NULL"))
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class View(Base):
    """A data-manager view (Label Studio's tab): its `data` JSON (filters, ordering, hidden columns, ...) as sent.

    Each belongs to the user who made it; project members may read and use it (`?view=`).
    """

    __tablename__ = "views"
    __table_args__ = (Index("ix_views_project_user", "project_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    data: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict, nullable=False)
    order: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class TaskTransition(Base):
    """Recorded history of the task state machine: who moved which task from where to where."""

    __tablename__ = "task_transitions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, index=True)
    from_state: Mapped[str] = mapped_column(String(20), nullable=False)
    to_state: Mapped[str] = mapped_column(String(20), nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    comment: Mapped[str] = mapped_column(Text, default="", nullable=False)
    created_at: Mapped[datetime] = _created()


class TaskLock(Base):
    __tablename__ = "task_locks"
    # Every /next and submission inserts and deletes a lock, so only the indexes lookups use:
    # by task (the unique pair leads with it: a task's live locks) and by user (the caller's held
    # lock, the author's locks a submission drops). Expiry is always read with one of those.
    __table_args__ = (
        UniqueConstraint("task_id", "user_id", name="uq_task_locks_task_user"),
        Index("ix_task_locks_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    expire_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class Annotation(Base):
    __tablename__ = "annotations"
    __table_args__ = (Index("ix_annotations_project_task", "project_id", "task_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    result: Mapped[list[Any]] = mapped_column(JSONDoc, default=list, nullable=False)
    was_cancelled: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    ground_truth: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    lead_time: Mapped[float | None] = mapped_column(Float)
    # accepted | rejected | None (not reviewed)
    review_status: Mapped[str | None] = mapped_column(String(20))
    draft_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    parent_prediction_id: Mapped[int | None] = mapped_column(ForeignKey("predictions.id", ondelete="SET NULL"))
    parent_annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id", ondelete="SET NULL"))
    last_action: Mapped[str | None] = mapped_column(String(40))
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    import_id: Mapped[int | None] = mapped_column(BigInteger)
    bulk_created: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Review(Base):
    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    annotation_id: Mapped[int] = mapped_column(
        ForeignKey("annotations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    accepted: Mapped[bool] = mapped_column(Boolean, nullable=False)
    comment: Mapped[str] = mapped_column(Text, default="", nullable=False)
    created_at: Mapped[datetime] = _created()


class Draft(Base):
    __tablename__ = "drafts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, index=True)
    annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    result: Mapped[list[Any]] = mapped_column(JSONDoc, default=list, nullable=False)
    lead_time: Mapped[float | None] = mapped_column(Float)
    was_postponed: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_project_task", "project_id", "task_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    result: Mapped[list[Any]] = mapped_column(JSONDoc, default=list, nullable=False)
    score: Mapped[float | None] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    ml_backend_id: Mapped[int | None] = mapped_column(ForeignKey("ml_backends.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


# --- integrations -----------------------------------------------------------------------


class MLBackend(Base):
    __tablename__ = "ml_backends"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    title: Mapped[str] = mapped_column(String(500), default="", nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    is_interactive: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    auth_method: Mapped[str] = mapped_column(String(20), default="NONE", nullable=False)
    basic_auth_user: Mapped[str | None] = mapped_column(String(200))
    basic_auth_pass: Mapped[str | None] = mapped_column(String(500))
    timeout: Mapped[float] = mapped_column(Float, default=100.0, nullable=False)
    extra_params: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict, nullable=False)
    auto_update: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    model_version: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    # CO connected | DI disconnected | ER error | TR training | PR predicting
    state: Mapped[str] = mapped_column(String(2), default="DI", nullable=False)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    send_payload: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    send_for_all_actions: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    actions: Mapped[list[str]] = mapped_column(JSONDoc, default=list, nullable=False)
    headers: Mapped[dict[str, str]] = mapped_column(JSONDoc, default=dict, nullable=False)
    # The HMAC signing key. It must be readable to sign, so it is stored, never returned by the API.
    secret: Mapped[str | None] = mapped_column(String(500))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # A failing endpoint is left alone until then (its own backoff: other webhooks never wait for it).
    backoff_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Declared in the operator's project file: re-converged (updated or deleted) at every start.
    provisioned: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


_PENDING = text("status = 'pending'")
# Percent of each page PostgreSQL fills with new deliveries: the rest keeps their claims' updates
# on the page (HOT, no index entries). Migration 0014 measured it.
DELIVERY_FILLFACTOR = 70


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # What a claim reads: each open webhook's due deliveries, oldest first, as many as it may take.
        Index(
            "ix_webhook_deliveries_due",
            "webhook_id",
            "next_attempt_at",
            "id",
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        ),
        # One task's deliveries to a webhook are sent in order: a delivery waits for the pending ones before it.
        Index(
            "ix_webhook_deliveries_task_order",
            "webhook_id",
            "task_id",
            "id",
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        ),
        {"postgresql_with": {"fillfactor": DELIVERY_FILLFACTOR}},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False, index=True)
    action: Mapped[str] = mapped_column(String(60), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict, nullable=False)
    # pending | delivered | failed
    status: Mapped[str] = mapped_column(String(20), default="pending", nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created()
    # The task the event is about (None for project-wide events): the order key.
    task_id: Mapped[int | None] = mapped_column(BigInteger)
    # Claimed by a delivery engine until then; a claim whose process died is taken again after it.
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EventOutbox(Base):
    """An event published in the transaction of its change, waiting to be fanned out (api_server/events.py)."""

    __tablename__ = "event_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(Integer, nullable=False)
    action: Mapped[str] = mapped_column(String(60), nullable=False)
    # The event's objects: JSON as published, ORM rows as references {"$row": table, "id": ...}.
    objects: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict, nullable=False)
    created_at: Mapped[datetime] = _created()
    # The one task the event is about (None: project-wide), the order key of what it is fanned out to:
    # a submission writes its deliveries itself only while no event of its task waits here.
    task_id: Mapped[int | None] = mapped_column(BigInteger, index=True)


class Job(Base):
    """A durable unit of background work (webhook delivery, ML call, sync...).

    The row is the source of truth; Redis, when configured, only carries ids to workers.
    Without Redis the API process runs the jobs itself, so nothing depends on Redis being up.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_run_after", "status", "run_after"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(60), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict, nullable=False)
    # queued | running | done | failed
    status: Mapped[str] = mapped_column(String(20), default="queued", nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5, nullable=False)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class _StorageColumns:
    """Columns every storage has, import or export (one definition, two tables)."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(20), nullable=False)  # s3 | gcs | azure
    title: Mapped[str] = mapped_column(String(500), default="", nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    # Provider settings (bucket, prefix, regex_filter, use_blob_urls, presign, ...); no secrets.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict, nullable=False)
    # Write-only credentials given through the API; never returned.
    credentials: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict, nullable=False)
    # Set when the storage belongs to a StorageConnection resource (namespace/name).
    external_name: Mapped[str | None] = mapped_column(String(300), unique=True)
    status: Mapped[str] = mapped_column(String(30), default="initialized", nullable=False)
    last_sync: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sync_count: Mapped[int | None] = mapped_column(Integer)
    last_sync_job: Mapped[str | None] = mapped_column(String(300))
    traceback: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    @declared_attr
    def project_id(cls) -> Mapped[int]:  # noqa: N805  (a foreign key must be declared per table)
        return mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True)


class ImportStorage(_StorageColumns, Base):
    __tablename__ = "import_storages"


class ExportStorage(_StorageColumns, Base):
    __tablename__ = "export_storages"

    can_delete_objects: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class StorageLink(Base):
    """Which storage object a task came from; (storage, key, row) is unique, so re-syncs never duplicate."""

    __tablename__ = "storage_links"
    __table_args__ = (UniqueConstraint("storage_id", "key", "row", name="uq_storage_links_storage_key_row"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    storage_id: Mapped[int] = mapped_column(ForeignKey("import_storages.id", ondelete="CASCADE"), nullable=False)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, index=True)
    key: Mapped[str] = mapped_column(String(1024), nullable=False)
    etag: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    # Position of the task inside a JSON/JSONL task file (0 for object-per-task mode).
    row: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class ExportLink(Base):
    __tablename__ = "export_links"
    __table_args__ = (UniqueConstraint("storage_id", "task_id", name="uq_export_links_storage_task"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    storage_id: Mapped[int] = mapped_column(ForeignKey("export_storages.id", ondelete="CASCADE"), nullable=False)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False)
    key: Mapped[str] = mapped_column(String(1024), nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
