"""StorageConnection: a bucket a project imports tasks from or exports annotations to."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator

from kubelabel_operator.models.common import BaseStatus, Model, ObjectRef, ResourceRequirements, immutable
from kubelabel_operator.models.pod import PodSettings

SyncState = Literal["initialized", "queued", "in_progress", "completed", "completed_with_errors", "failed"]
FINISHED_STATES: frozenset[str] = frozenset({"completed", "completed_with_errors", "failed"})

# Five space-separated fields or a @macro; the same check runs in the API server (CEL) and here.
CRON_MESSAGE = "schedule must be a cron expression with five fields or a @macro (e.g. @hourly)"
CRON_RE = r"^(@(yearly|annually|monthly|weekly|daily|hourly)|[^ ]+( +[^ ]+){4})$"


class ObjectFilter(Model):
    """Which object keys are synced: a glob or a regular expression, at most one."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.glob) && has(self.regex))",
                    "message": "set at most one of glob or regex",
                }
            ]
        }
    )

    glob: str | None = Field(default=None, description="Shell glob on the key, e.g. `*.jpg`.")
    regex: str | None = Field(default=None, description="Regular expression on the key, e.g. `.*\\.jsonl?$`.")

    @model_validator(mode="after")
    def _at_most_one(self) -> Self:
        if self.glob is not None and self.regex is not None:
            raise ValueError("set at most one of glob or regex")
        return self


class StorageConnectionSpec(Model):
    """Desired state of a StorageConnection."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.schedule) || self.schedule.matches('" + CRON_RE + "')",
                    "message": CRON_MESSAGE,
                    "fieldPath": ".schedule",
                },
                {
                    "rule": "self.direction == 'import' || self.mode == 'tasks'",
                    "message": "export storages write task files: mode must be tasks",
                    "fieldPath": ".mode",
                },
                # The project's storage record is found by provider and direction, and its tasks keep
                # the keys they were imported from: another project, provider, bucket or direction
                # would leave those tasks pointing at objects this storage no longer syncs.
                immutable("projectRef", "the synced tasks stay in the old project; create a new StorageConnection"),
                immutable("provider", "tasks keep their keys in the old store; create a new StorageConnection"),
                immutable("bucket", "tasks keep their keys in the old bucket; create a new StorageConnection"),
                immutable("direction", "import and export are separate storages; create a new StorageConnection"),
            ]
        }
    )

    project_ref: ObjectRef = Field(description="The LabelingProject (same namespace) this storage feeds.")
    direction: Literal["import", "export"] = Field(
        default="import", description="import: objects become tasks; export: annotations are written."
    )
    provider: Literal["s3", "gcs", "azure"] = Field(description="Object store kind.")
    bucket: str = Field(min_length=1, max_length=1024, description="Bucket (S3, GCS) or container (Azure).")
    prefix: str = Field(default="", max_length=1024, description="Only keys under this prefix.")
    region: str | None = Field(default=None, description="Region (S3).")
    endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Custom endpoint URL (S3-compatible stores, emulators).",
    )
    credentials_secret_ref: ObjectRef | None = Field(
        default=None,
        description="Secret with the credentials (keys such as AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,"
        " GOOGLE_APPLICATION_CREDENTIALS_JSON, AZURE_STORAGE_CONNECTION_STRING);"
        " unset for workload identity.",
    )
    filter: ObjectFilter | None = Field(default=None, description="Which keys to sync.")
    mode: Literal["objects", "tasks"] = Field(
        default="objects",
        description="objects: every object is one task (by URL); tasks: objects are JSON/JSONL task files.",
    )
    presign: bool = Field(default=True, description="Hand out presigned URLs instead of storage URLs.")
    presign_ttl_minutes: int = Field(default=15, ge=1, le=10080, description="Lifetime of presigned URLs.")
    schedule: str | None = Field(default=None, max_length=100, description="Cron schedule; when set, a CronJob syncs.")
    sync_request: str | None = Field(
        default=None, max_length=253, description="Change this value to start a new sync (on demand)."
    )
    backoff_limit: int = Field(default=2, ge=0, le=10, description="Retries of a failed sync Job.")
    resources: ResourceRequirements | None = Field(
        default=None, description="Sync container resources (default: requests cpu 100m, memory 128Mi)."
    )
    pod: PodSettings | None = Field(
        default=None, description="Placement and identity of the sync pods (default: the operator's)."
    )

    @model_validator(mode="after")
    def _rules(self) -> Self:
        import re

        if self.schedule is not None and not re.match(CRON_RE, self.schedule):
            raise ValueError(CRON_MESSAGE)
        if self.direction == "export" and self.mode != "tasks":
            raise ValueError("export storages write task files: mode must be tasks")
        return self


class StorageConnectionStatus(BaseStatus):
    """Observed state of a StorageConnection."""

    sync_state: SyncState | None = Field(default=None, description="Lifecycle of the last sync.")
    last_sync_time: str | None = Field(default=None, description="When the last sync finished (RFC 3339).")
    last_sync_count: int | None = Field(default=None, description="Objects synced by the last sync.")
    last_sync_errors: int | None = Field(default=None, description="Objects that failed in the last sync.")
    last_sync_duration_seconds: float | None = Field(default=None, description="Duration of the last sync.")
    last_job: str | None = Field(default=None, description="Name of the last sync Job.")
    last_sync_request: str | None = Field(default=None, description="spec.syncRequest the last Job ran for.")
    sync_runs: int | None = Field(default=None, description="Number of on-demand sync Jobs started.")
    message: str | None = Field(default=None, description="Result message of the last sync.")


__all__ = ["FINISHED_STATES", "StorageConnectionSpec", "StorageConnectionStatus", "SyncState"]
