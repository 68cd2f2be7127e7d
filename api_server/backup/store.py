"""Backups in a bucket: the location, the gzip parts, the manifest, pruning.

One backup is `<prefix>/<timestamp>-<id>/`: numbered parts (each a complete gzip stream, so
memory holds at most one part) and `manifest.json`, written last. A backup without its
manifest is incomplete (killed, or still running) and is never restored.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from api_server.storages.config import spec_from_env
from api_server.storages.providers import (
    SCHEMES,
    Credentials,
    ObjectNotFoundError,
    StorageProvider,
    load_credentials,
    make_provider,
)

MANIFEST = "manifest.json"
NAME = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
FORMAT = 1
# Compressed bytes of one part: what the command holds in memory (plus zlib's own state).
DEFAULT_PART_BYTES = 16 << 20


class BackupOutput(BaseSettings):
    """Where the result line goes (the pod's termination message), as for `kubelabel sync`: read on
    its own, so a command whose other settings are wrong still reports."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore")

    result_file: str | None = Field(default=None, alias="KUBELABEL_RESULT_FILE")


class BackupEnv(BaseSettings):
    """The backup and restore commands' own environment (the database's is api_server.settings,
    the bucket credentials' the providers'), read through pydantic-settings."""

    model_config = SettingsConfigDict(env_prefix="KUBELABEL_BACKUP_", env_ignore_empty=True, extra="ignore")

    part_bytes: int = Field(default=DEFAULT_PART_BYTES, ge=1024)
    region: str | None = None
    endpoint: str | None = None


def backup_env() -> BackupEnv:
    try:
        return BackupEnv()
    except ValidationError as exc:
        name = f"KUBELABEL_BACKUP_{str(exc.errors()[0]['loc'][0]).upper()}"
        value = exc.errors()[0]["input"]
        if name == "KUBELABEL_BACKUP_PART_BYTES":
            raise BackupError(f"{name} must be a whole number of bytes, at least 1024, not {value!r}") from None
        raise BackupError(f"{name}: {exc.errors()[0]['msg']}") from None


def part_bytes() -> int:
    return backup_env().part_bytes


_LEVEL = 3  # gzip level: most of level 9's size at a fraction of its time for row text


class BackupError(Exception):
    """Anything that stops a backup or restore; the message says what to fix."""


@dataclass(frozen=True)
class Location:
    """A bucket URI: s3://bucket/prefix, gs://bucket/prefix or azure-blob://container/prefix."""

    kind: str
    scheme: str
    bucket: str
    prefix: str  # no leading or trailing slash

    @classmethod
    def parse(cls, uri: str) -> Location:
        scheme, sep, rest = uri.partition("://")
        if not sep or scheme not in SCHEMES:
            raise BackupError(f"{uri!r}: expected s3://, gs:// or azure-blob:// followed by bucket/prefix")
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise BackupError(f"{uri!r}: the bucket name is missing")
        return cls(SCHEMES[scheme], scheme, bucket, prefix.strip("/"))

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def uri(self, *parts: str) -> str:
        return f"{self.scheme}://{self.bucket}/{self.key(*parts)}"

    def child(self, name: str) -> Location:
        return Location(self.kind, self.scheme, self.bucket, self.key(name))


def open_provider(location: Location, environ: dict[str, str] | None = None) -> StorageProvider:
    """The provider for `location`, configured as `kubelabel sync` is: credentials from
    KUBELABEL_STORAGE_CREDENTIALS_DIR or the environment, endpoint/region/project/account from
    KUBELABEL_STORAGE_SPEC (a StorageConnection spec) or KUBELABEL_BACKUP_ENDPOINT / _REGION.
    The endpoint passes the outbound-address policy (storage targets) in make_provider."""
    env = dict(os.environ if environ is None else environ)
    try:
        spec = spec_from_env(env)
    except ValueError as exc:
        raise BackupError(str(exc)) from None
    credentials: Credentials = load_credentials(environ=env)
    settings = backup_env()
    return make_provider(
        location.kind,
        location.bucket,
        credentials=credentials,
        region=settings.region or spec.get("region"),
        endpoint_url=settings.endpoint or spec.get("endpoint"),
        project_id=spec.get("googleProjectId"),
        account_name=spec.get("accountName"),
    )


def new_backup_name(now: datetime | None = None) -> str:
    """`<UTC timestamp>-<id>`: names sort in time order, and two runs in one second still differ."""
    moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{moment}-{uuid.uuid4().hex[:8]}"


@dataclass
class Stream:
    """One logical byte stream (a table's rows, or the SQLite file) written as gzip parts."""

    name: str
    raw_bytes: int = 0
    rows: int = 0
    parts: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        stored = sum(p["size"] for p in self.parts)
        return {"name": self.name, "rows": self.rows, "bytes": self.raw_bytes, "stored_bytes": stored,
                "parts": self.parts, **self.extra}  # fmt: skip


class PartWriter:
    """Compresses what it is given and uploads a part each time a part size of gzip has accumulated."""

    def __init__(self, provider: StorageProvider, location: Location, stream: Stream, size: int | None = None):
        self.provider, self.location, self.stream = provider, location, stream
        self.part_bytes = size or part_bytes()
        self._buffer = bytearray()
        self._zip = zlib.compressobj(_LEVEL, zlib.DEFLATED, 31)
        self._pending = 0  # raw bytes in the current part

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        self.stream.raw_bytes += len(view)
        while view:
            # A part also ends after 8x its size of raw bytes: zlib may hold back output for long on
            # very compressible data, and a restore then never expands more than that per part.
            piece = view[: 8 * self.part_bytes - self._pending]
            view = view[len(piece) :]
            self._pending += len(piece)
            self._buffer += self._zip.compress(piece)
            if len(self._buffer) >= self.part_bytes or self._pending >= 8 * self.part_bytes:
                self._flush()

    def _flush(self) -> None:
        self._buffer += self._zip.flush()
        data = bytes(self._buffer)
        number = len(self.stream.parts)
        key = self.location.key(self.stream.name, f"{number:05d}.gz")
        self.provider.write(key, data, content_type="application/gzip")
        self.stream.parts.append({"key": key.rpartition("/")[2], "size": len(data),
                                  "sha256": hashlib.sha256(data).hexdigest()})  # fmt: skip
        self._buffer = bytearray()
        self._zip = zlib.compressobj(_LEVEL, zlib.DEFLATED, 31)
        self._pending = 0

    def close(self) -> Stream:
        if self._pending or not self.stream.parts:
            self._flush()
        return self.stream


def read_stream(provider: StorageProvider, location: Location, stream: dict[str, Any]) -> Iterator[bytes]:
    """The stream's bytes, part after part, each part's checksum verified before any of it is used."""
    for part in stream["parts"]:
        key = location.key(stream["name"], part["key"])
        try:
            data = provider.read(key)
        except ObjectNotFoundError:
            raise BackupError(f"{location.uri(stream['name'], part['key'])}: part missing") from None
        if len(data) != part["size"] or hashlib.sha256(data).hexdigest() != part["sha256"]:
            raise BackupError(f"{location.uri(stream['name'], part['key'])}: checksum mismatch (corrupt backup)")
        unzip = zlib.decompressobj(31)
        pending: bytes = data
        # At most 1 MiB of output at a time: a part of repetitive rows expands many times over.
        while pending:
            chunk = unzip.decompress(pending, 1 << 20)
            pending = unzip.unconsumed_tail
            if chunk:
                yield chunk
        tail = unzip.flush()
        if tail:
            yield tail


def write_manifest(provider: StorageProvider, location: Location, manifest: dict[str, Any]) -> None:
    body = json.dumps({"format": FORMAT, **manifest}, indent=1, sort_keys=True).encode()
    provider.write(location.key(MANIFEST), body, content_type="application/json")


def read_manifest(provider: StorageProvider, location: Location) -> dict[str, Any]:
    try:
        manifest = json.loads(provider.read(location.key(MANIFEST)))
    except ObjectNotFoundError:
        raise BackupError(
            f"{location.uri(MANIFEST)} does not exist: not a backup, or an incomplete one (killed before it "
            "finished); restore a complete backup (the URI `kubelabel backup` printed)"
        ) from None
    except ValueError:
        raise BackupError(f"{location.uri(MANIFEST)} is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{location.uri(MANIFEST)}: unknown backup format {manifest.get('format')!r}")
    return manifest


def prune(provider: StorageProvider, root: Location, keep: int) -> list[str]:
    """Delete complete backups under `root` but the newest `keep`, and leftovers of killed runs
    older than the oldest kept backup. Returns the names deleted."""
    objects: dict[str, list[str]] = {}
    base = root.key() + "/" if root.key() else ""
    for info in provider.iter_objects(base):
        name, sep, _ = info.key[len(base) :].partition("/")
        if sep and NAME.match(name):
            objects.setdefault(name, []).append(info.key)
    complete = sorted(n for n, keys in objects.items() if any(k.endswith("/" + MANIFEST) for k in keys))
    kept = complete[-keep:] if keep > 0 else complete
    if not kept:
        return []
    doomed = [n for n in complete if n not in kept]
    doomed += [n for n in objects if n not in complete and n < kept[0]]
    for name in sorted(doomed):
        # The manifest first: a half-deleted backup must not look complete.
        for key in sorted(objects[name], key=lambda k: not k.endswith("/" + MANIFEST)):
            provider.delete(key)
    return sorted(doomed)
