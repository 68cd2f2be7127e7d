"""One description of a storage's settings, from the API (Label Studio field names) or a CR spec.

The API stores these settings (no secrets) in the storage row's `settings` document, under
Label Studio's field names plus a few kubelabel extensions (`glob_filter`, `endpoint`,
`update_changed`, `export_on_save`). `kubelabel sync` reads the StorageConnection spec
(camelCase) and maps it to the same shape.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from api_server.storages.providers import Credentials, KeyFilter, StorageError, StorageProvider, make_provider

KINDS = ("s3", "gcs", "azure")

# Label Studio's write-only credential fields per storage type -> our credential key names.
SECRET_FIELDS: dict[str, dict[str, str]] = {
    "s3": {
        "aws_access_key_id": "aws_access_key_id",
        "aws_secret_access_key": "aws_secret_access_key",
        "aws_session_token": "aws_session_token",
    },
    "gcs": {"google_application_credentials": "google_application_credentials_json"},
    "azure": {
        "account_key": "azure_storage_account_key",
        "connection_string": "azure_storage_connection_string",
        "sas_token": "azure_storage_sas_token",
    },
}


@dataclass
class StorageConfig:
    type: str
    bucket: str
    prefix: str = ""
    regex_filter: str | None = None
    glob_filter: str | None = None
    # True: every object is a task whose data holds the object's URL; False: objects are JSON/JSONL task files.
    use_blob_urls: bool = False
    presign: bool = True
    presign_ttl: int = 15  # minutes, as in Label Studio
    recursive_scan: bool = True
    region_name: str | None = None
    endpoint: str | None = None  # S3 `s3_endpoint`; also a GCS/Azure emulator or sovereign-cloud endpoint
    google_project_id: str | None = None
    account_name: str | None = None
    aws_sse_kms_key_id: str | None = None
    # Import: a changed object (new etag/generation) updates its task(s) on re-sync.
    update_changed: bool = False
    # Export: write an annotated task on every annotation save (otherwise only on sync).
    export_on_save: bool = True
    can_delete_objects: bool = False

    def __post_init__(self) -> None:
        if self.type not in KINDS:
            raise StorageError(f"unknown storage type {self.type!r} (expected one of {', '.join(KINDS)})")
        if not self.bucket:
            raise StorageError("bucket (container for Azure) is required")
        self.key_filter()  # fail early on a bad regex

    @property
    def scheme(self) -> str:
        return {"s3": "s3", "gcs": "gs", "azure": "azure-blob"}[self.type]

    def key_filter(self) -> KeyFilter:
        return KeyFilter(glob=self.glob_filter or None, regex=self.regex_filter or None, prefix=self.prefix)

    def provider(self, credentials: Credentials | None) -> StorageProvider:
        return make_provider(
            self.type,
            self.bucket,
            credentials=credentials,
            region=self.region_name,
            endpoint_url=self.endpoint,
            project_id=self.google_project_id,
            account_name=self.account_name,
            sse_kms_key_id=self.aws_sse_kms_key_id,
        )

    def uri(self, key: str) -> str:
        return f"{self.scheme}://{self.bucket}/{key}"

    # -- Label Studio field names ------------------------------------------------------------
    def to_settings(self) -> dict[str, Any]:
        """The `settings` document (Label Studio names; `container` for Azure)."""
        data = asdict(self)
        data.pop("type")
        if self.type == "azure":
            data["container"] = data.pop("bucket")
        if self.type == "s3":
            data["s3_endpoint"] = data.pop("endpoint")
        return data

    @classmethod
    def from_settings(cls, type_: str, settings: dict[str, Any]) -> StorageConfig:
        values = dict(settings)
        if "container" in values and not values.get("bucket"):
            values["bucket"] = values.pop("container")
        if values.get("s3_endpoint") and not values.get("endpoint"):
            values["endpoint"] = values["s3_endpoint"]
        known = {f.name for f in fields(cls)} - {"type"}
        kwargs = {k: v for k, v in values.items() if k in known and v is not None}
        kwargs.setdefault("bucket", "")
        return cls(type=type_, **kwargs)

    # -- StorageConnection spec (camelCase) ----------------------------------------------------
    @classmethod
    def from_cr_spec(cls, spec: dict[str, Any]) -> tuple[str, StorageConfig]:
        """(direction, config) from a StorageConnection spec as the operator passes it."""
        flt = spec.get("filter") or {}
        mode = spec.get("mode", "objects")
        direction = spec.get("direction", "import")
        config = cls(
            type=spec.get("provider", ""),
            bucket=spec.get("bucket", ""),
            prefix=spec.get("prefix") or "",
            regex_filter=flt.get("regex"),
            glob_filter=flt.get("glob"),
            use_blob_urls=direction == "import" and mode == "objects",
            presign=bool(spec.get("presign", True)),
            presign_ttl=int(spec.get("presignTtlMinutes", 15)),
            recursive_scan=bool(spec.get("recursive", True)),
            region_name=spec.get("region"),
            endpoint=spec.get("endpoint"),
            google_project_id=spec.get("googleProjectId"),
            account_name=spec.get("accountName"),
            update_changed=bool(spec.get("updateChanged", False)),
            export_on_save=bool(spec.get("exportOnSave", True)),
            can_delete_objects=bool(spec.get("canDeleteObjects", False)),
        )
        if direction not in ("import", "export"):
            raise StorageError(f"direction must be import or export, not {direction!r}")
        return direction, config


def credentials_from_fields(type_: str, values: dict[str, Any]) -> Credentials:
    """Credentials from Label Studio's write-only fields (as given to the API)."""
    mapping: dict[str, str] = {}
    for field_name, key in SECRET_FIELDS.get(type_, {}).items():
        if values.get(field_name):
            mapping[key] = str(values[field_name])
    if type_ == "azure" and values.get("account_name"):
        mapping["azure_storage_account_name"] = str(values["account_name"])
    return Credentials.from_mapping(mapping)


def credentials_to_fields(type_: str, credentials: Credentials) -> dict[str, str]:
    """The inverse: Label Studio's write-only field names for what `credentials` holds."""
    out: dict[str, str] = {}
    for field_name, key in SECRET_FIELDS.get(type_, {}).items():
        value = getattr(credentials, key)
        if value:
            out[field_name] = value
    return out


def spec_from_env(env: Any) -> dict[str, Any]:
    """KUBELABEL_STORAGE_SPEC (a StorageConnection spec as JSON, set by the operator), or {} when unset.

    Raises ValueError naming the variable when it is not a JSON object."""
    raw = env.get("KUBELABEL_STORAGE_SPEC")
    if not raw:
        return {}
    try:
        spec = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"KUBELABEL_STORAGE_SPEC is not JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise ValueError("KUBELABEL_STORAGE_SPEC must be a JSON object")
    return spec
