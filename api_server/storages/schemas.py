"""Request and response bodies of the storage endpoints (Label Studio field names).

One payload model serves create, update and validate: every field is optional and only the
fields sent are applied. Credential fields are write-only: accepted here, never in any
response.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api_server.common.secrets import MASK

SyncStatus = Literal["initialized", "queued", "in_progress", "completed", "completed_with_errors", "failed"]

SECRET_NAMES = (
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "google_application_credentials",
    "account_key",
    "connection_string",
    "sas_token",
)

SETTING_NAMES = (
    "bucket",
    "container",
    "prefix",
    "regex_filter",
    "glob_filter",
    "use_blob_urls",
    "presign",
    "presign_ttl",
    "recursive_scan",
    "region_name",
    "s3_endpoint",
    "endpoint",
    "google_project_id",
    "account_name",
    "aws_sse_kms_key_id",
    "update_changed",
    "export_on_save",
)


class StoragePayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int | None = None  # validate: check an existing storage with these changes
    project: int | None = None
    title: str | None = Field(default=None, max_length=500)
    description: str | None = None
    # kubelabel: the StorageConnection (namespace/name) this storage belongs to; create upserts by it.
    external_name: str | None = Field(default=None, max_length=300)

    bucket: str | None = None
    container: str | None = None
    prefix: str | None = None
    regex_filter: str | None = None
    glob_filter: str | None = None
    use_blob_urls: bool | None = None
    presign: bool | None = None
    presign_ttl: int | None = Field(default=None, ge=1, le=10080)
    recursive_scan: bool | None = None
    region_name: str | None = None
    s3_endpoint: str | None = None
    endpoint: str | None = None
    google_project_id: str | None = None
    account_name: str | None = None
    aws_sse_kms_key_id: str | None = None
    update_changed: bool | None = None
    export_on_save: bool | None = None
    can_delete_objects: bool | None = None

    # write-only credentials
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    google_application_credentials: str | None = None
    account_key: str | None = None
    connection_string: str | None = None
    sas_token: str | None = None

    # sync bookkeeping (written by `kubelabel sync`)
    status: SyncStatus | None = None
    last_sync: datetime | None = None
    last_sync_count: int | None = None
    last_sync_job: str | None = None
    traceback: str | None = None
    meta: dict[str, Any] | None = None

    def settings(self) -> dict[str, Any]:
        sent = self.model_dump(exclude_unset=True)
        return {k: sent[k] for k in SETTING_NAMES if k in sent}

    def secrets(self) -> dict[str, str]:
        """The credentials sent; a masked value ("********") means "keep the stored one"."""
        sent = self.model_dump(exclude_unset=True)
        return {k: sent[k] for k in SECRET_NAMES if sent.get(k) and sent[k] != MASK}


class LinkItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=1024)
    etag: str = Field(default="", max_length=200)
    row: int = Field(default=0, ge=0)
    # A Label Studio task ({"data": ..., "annotations": ..., "predictions": ...}); absent in blob-URL mode.
    task: dict[str, Any] | None = None


class LinkBatch(BaseModel):
    items: list[LinkItem] = Field(max_length=10000)
    update_changed: bool = False


class LinkBatchResult(BaseModel):
    created: int
    updated: int
    unchanged: int
    errors: list[str] = Field(default_factory=list)


class KnownKeysRequest(BaseModel):
    keys: list[str] = Field(max_length=10000)


class KnownKeysResponse(BaseModel):
    etags: dict[str, str]


class ValidateResponse(BaseModel):
    ok: bool = True
    detail: str = "storage is reachable and the credentials work"


class StorageTypeInfo(BaseModel):
    name: str
    title: str
