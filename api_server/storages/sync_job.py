"""`kubelabel sync`: one storage sync, configured by env (the StorageConnection Job's entrypoint).

Env (contract): KUBELABEL_API_URL, KUBELABEL_API_TOKEN, KUBELABEL_PROJECT_ID,
KUBELABEL_STORAGE_NAME (namespace/name), KUBELABEL_STORAGE_SPEC (the CR spec as JSON),
KUBELABEL_STORAGE_CREDENTIALS_DIR (mounted Secret), KUBELABEL_RESULT_FILE.
Optional: KUBELABEL_SYNC_PROGRESS_SECONDS (default 5), KUBELABEL_SYNC_BATCH_SIZE (1000),
KUBELABEL_SYNC_SHARE_CREDENTIALS (default true: hand the credentials to the API server,
write-only, so it can presign media and write exports; false keeps them in the Job only).

Import: the Job lists the bucket itself and sends task batches with their storage links
to the API (idempotent by key, so a killed Job restarted finishes the work without
duplicates). Export: the Job asks the API server to run the export sync and waits for it.

Output: a progress line every few seconds on stderr, a summary, then one JSON line
{"status", "count", "errors", "message"} on stdout, also written to the result file
(the pod's termination message). Exit 0 for completed / completed_with_errors, 1 for failed.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from api_server.common.time import iso, utcnow
from api_server.storages.api_client import ApiError, HttpSink, StorageApi
from api_server.storages.config import StorageConfig, credentials_to_fields, spec_from_env
from api_server.storages.import_sync import SyncProgress, run_import
from api_server.storages.providers import Credentials, StorageError, load_credentials

log = logging.getLogger("kubelabel.sync")

FINAL = {"completed", "completed_with_errors", "failed"}


class Terminated(BaseException):
    """SIGTERM (the Job was deleted or the pod evicted): stop, record, and let a rerun resume."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


DEFAULT_RESULT_FILE = "/dev/termination-log"


class JobOutput(BaseSettings):
    """Where the result goes: read on its own, so a Job whose other settings are wrong still reports."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    result_file: str | None = Field(default=None, alias="KUBELABEL_RESULT_FILE")


class JobEnv(JobOutput):
    """The Job's environment (the contract above), read through pydantic-settings."""

    api_url: str = Field(min_length=1, alias="KUBELABEL_API_URL")
    token: str = Field(default="", alias="KUBELABEL_API_TOKEN")
    project_id: int = Field(default=1, alias="KUBELABEL_PROJECT_ID")
    storage_name: str = Field(default="", alias="KUBELABEL_STORAGE_NAME")
    # NoDecode: the JSON is parsed by spec_from_env, whose errors name the variable.
    spec: Annotated[dict[str, Any], NoDecode] = Field(alias="KUBELABEL_STORAGE_SPEC")
    progress_seconds: float = Field(default=5.0, alias="KUBELABEL_SYNC_PROGRESS_SECONDS")
    batch_size: int = Field(default=1000, alias="KUBELABEL_SYNC_BATCH_SIZE")
    share_credentials: bool = Field(default=True, alias="KUBELABEL_SYNC_SHARE_CREDENTIALS")

    @field_validator("spec", mode="before")
    @classmethod
    def _spec(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value:
                raise PydanticCustomError("missing", "Field required")  # set but empty: as if unset
            return spec_from_env({"KUBELABEL_STORAGE_SPEC": value})
        return value

    @classmethod
    def from_environ(cls) -> JobEnv:
        """The settings, or a ValueError naming the variables at fault (missing ones first)."""
        try:
            return cls()
        except ValidationError as exc:
            errors = exc.errors()
            missing = [str(e["loc"][0]) for e in errors if e["type"] in ("missing", "string_too_short")]
            if missing:
                raise ValueError(f"missing environment: {', '.join(missing)}") from None
            name, message = str(errors[0]["loc"][0]), errors[0]["msg"].removeprefix("Value error, ")
            raise ValueError(message if message.startswith(name) else f"{name}: {message}") from None


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class _Ticker:
    """Prints the progress line every `interval` seconds from a side thread."""

    def __init__(self, progress: SyncProgress, interval: float) -> None:
        self._progress = progress
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sync-progress", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            _say(f"progress: {self._progress.line()}")

    def __enter__(self) -> _Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def storage_body(job: JobEnv, config: StorageConfig, credentials: Credentials, share: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        **config.to_settings(),
        "project": job.project_id,
        "title": job.storage_name or f"{config.type}://{config.bucket}/{config.prefix}",
        "external_name": job.storage_name or None,
    }
    if share:
        body.update(credentials_to_fields(config.type, credentials))
        if config.type == "azure" and credentials.azure_storage_account_name and not config.account_name:
            body["account_name"] = credentials.azure_storage_account_name
    return body


def _result(status: str, count: int, errors: int, message: str) -> dict[str, Any]:
    return {"status": status, "count": count, "errors": errors, "message": message[:1000]}


def _write_result(result: dict[str, Any], path: str | None) -> None:
    line = json.dumps(result, sort_keys=True)
    print(line, flush=True)
    target = path or DEFAULT_RESULT_FILE
    try:
        if path or os.access(target, os.W_OK):
            Path(target).write_text(line, encoding="utf-8")
    except OSError as exc:
        _say(f"warning: cannot write the result file {target}: {exc.strerror}")


def _run_import(api: StorageApi, job: JobEnv, config: StorageConfig, storage_id: int, provider: Any) -> dict[str, Any]:
    progress = SyncProgress()
    api.patch_storage("import", config.type, storage_id, {"status": "in_progress", "traceback": None})
    try:
        with _Ticker(progress, job.progress_seconds):
            run_import(
                provider,
                config,
                HttpSink(api, config.type, storage_id),
                batch_size=job.batch_size,
                progress=progress,
            )
    except (StorageError, ApiError, Terminated) as exc:
        # Whatever was submitted stays (it is linked); a rerun continues from there.
        message = f"sync stopped: {str(exc) or 'terminated (SIGTERM)'}; run it again to resume"
        _patch_quietly(api, "import", config.type, storage_id, {"status": "failed", "traceback": message})
        return _result("failed", progress.created + progress.updated, progress.errors + 1, message)
    summary = progress.summary()
    status = progress.status
    count = progress.created + progress.updated
    api.patch_storage(
        "import",
        config.type,
        storage_id,
        {
            "status": status,
            "last_sync": iso(utcnow()),
            "last_sync_count": count,
            "traceback": "\n".join(progress.error_samples) or None,
            "meta": summary,
        },
    )
    _say(f"summary: {progress.line()}")
    for sample in progress.error_samples:
        _say(f"error: {sample}")
    message = (
        f"{progress.created} created, {progress.updated} updated, {progress.unchanged} unchanged, "
        f"{progress.errors} errors of {progress.matched} matching objects ({progress.listed} listed)"
    )
    return _result(status, count, progress.errors, message)


def _run_export(api: StorageApi, job: JobEnv, config: StorageConfig, storage_id: int) -> dict[str, Any]:
    api.start_sync("export", config.type, storage_id)
    started = time.monotonic()
    last_line = 0.0
    while True:
        record = api.get_storage("export", config.type, storage_id)
        status = record.get("status")
        if status in FINAL:
            meta = record.get("meta") or {}
            count = int(record.get("last_sync_count") or 0)
            errors = int(meta.get("errors", 0))
            message = record.get("traceback") or f"{count} tasks exported"
            _say(f"summary: exported={count} errors={errors} elapsed={time.monotonic() - started:.1f}s")
            return _result(str(status), count, errors, str(message))
        if time.monotonic() - last_line >= job.progress_seconds:
            _say(f"progress: export {status} elapsed={time.monotonic() - started:.1f}s")
            last_line = time.monotonic()
        time.sleep(0.5)


def _patch_quietly(api: StorageApi, direction: str, type_: str, storage_id: int, body: dict[str, Any]) -> None:
    try:
        api.patch_storage(direction, type_, storage_id, body)
    except ApiError as exc:
        _say(f"warning: cannot record the status: {exc}")


def run(job: JobEnv, credentials: Credentials) -> dict[str, Any]:
    try:
        direction, config = StorageConfig.from_cr_spec(job.spec)
    except (StorageError, TypeError, ValueError) as exc:
        return _result("failed", 0, 1, f"invalid storage spec: {exc}")
    _say(
        f"sync: {direction} {config.uri(config.prefix)} -> project {job.project_id} at {job.api_url} "
        f"(credentials: {', '.join(credentials.present()) or 'ambient'})"
    )
    api = StorageApi(job.api_url, job.token)
    try:
        try:
            record = api.upsert_storage(
                direction, config.type, storage_body(job, config, credentials, job.share_credentials)
            )
        except ApiError as exc:
            return _result("failed", 0, 1, f"cannot register the storage with the API: {exc}")
        storage_id = int(record["id"])
        try:
            provider = config.provider(credentials)
            provider.validate()
        except StorageError as exc:
            message = f"storage check failed: {exc}"
            _patch_quietly(api, direction, config.type, storage_id, {"status": "failed", "traceback": message})
            return _result("failed", 0, 1, message)
        if direction == "export":
            return _run_export(api, job, config, storage_id)
        return _run_import(api, job, config, storage_id, provider)
    except ApiError as exc:
        return _result("failed", 0, 1, str(exc))
    finally:
        api.close()


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        job = JobEnv.from_environ()
    except ValueError as exc:
        result = _result("failed", 0, 1, f"configuration error: {exc}")
        _write_result(result, JobOutput().result_file)
        return 1
    result = run(job, load_credentials())
    _write_result(result, job.result_file)
    return 0 if result["status"] in ("completed", "completed_with_errors") else 1
