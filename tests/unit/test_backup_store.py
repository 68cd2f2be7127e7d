"""Backup storage logic on an in-memory bucket: locations, parts and checksums, the manifest, pruning."""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import pytest

from api_server.backup.store import (
    BackupError,
    Location,
    PartWriter,
    Stream,
    new_backup_name,
    prune,
    read_manifest,
    read_stream,
    write_manifest,
)
from api_server.storages.providers import ObjectInfo, ObjectNotFoundError, StorageProvider


class MemoryBucket(StorageProvider):
    scheme = "s3"
    kind = "s3"

    def __init__(self) -> None:
        super().__init__("mem")
        self.objects: dict[str, bytes] = {}

    def iter_objects(self, prefix: str = "", *, recursive: bool = True, page_size: int = 1000) -> Iterator[ObjectInfo]:
        for key in sorted(self.objects):
            if key.startswith(prefix):
                yield ObjectInfo(key, "", len(self.objects[key]))

    def read(self, key: str) -> bytes:
        if key not in self.objects:
            raise ObjectNotFoundError(key)
        return self.objects[key]

    def open(self, key: str) -> BinaryIO:
        return io.BytesIO(self.read(key))

    def presign(self, key: str, ttl_seconds: int) -> str:
        raise NotImplementedError

    def write(self, key: str, data: bytes, content_type: str = "application/json") -> str:
        self.objects[key] = bytes(data)
        return ""

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def validate(self) -> None:
        pass


def test_locations():
    loc = Location.parse("azure-blob://box/a/b/")
    assert (loc.kind, loc.bucket, loc.prefix) == ("azure", "box", "a/b")
    assert loc.child("n").uri("manifest.json") == "azure-blob://box/a/b/n/manifest.json"
    assert Location.parse("gs://b").key("x") == "x"
    for bad in ("b/prefix", "ftp://b/p", "s3:///p"):
        with pytest.raises(BackupError):
            Location.parse(bad)


def test_parts_round_trip_with_bounded_parts_and_checksums():
    bucket, loc = MemoryBucket(), Location.parse("s3://mem/backups/one")
    data = os.urandom(50_000) + b"row\n" * 200_000  # incompressible, then very compressible
    writer = PartWriter(bucket, loc, Stream("tables/t"), size=4096)
    for start in range(0, len(data), 70_000):
        writer.write(data[start : start + 70_000])
    stream = writer.close().to_json()
    assert len(stream["parts"]) > 10 and stream["bytes"] == len(data)
    # Each part is a whole gzip stream no larger than a part (plus one write's compressed output).
    for part in stream["parts"]:
        raw = zlib.decompress(bucket.objects[f"backups/one/tables/t/{part['key']}"], 31)
        assert len(raw) <= 8 * 4096
    assert b"".join(read_stream(bucket, loc, stream)) == data

    key = f"backups/one/tables/t/{stream['parts'][3]['key']}"
    bucket.objects[key] = bucket.objects[key][:-1] + bytes([bucket.objects[key][-1] ^ 1])
    with pytest.raises(BackupError, match="checksum mismatch"):
        b"".join(read_stream(bucket, loc, stream))
    del bucket.objects[key]
    with pytest.raises(BackupError, match="part missing"):
        b"".join(read_stream(bucket, loc, stream))


def test_manifest_missing_or_foreign_is_refused():
    bucket, loc = MemoryBucket(), Location.parse("s3://mem/p/x")
    with pytest.raises(BackupError, match="incomplete"):
        read_manifest(bucket, loc)
    bucket.objects["p/x/manifest.json"] = b'{"format": 99}'
    with pytest.raises(BackupError, match="unknown backup format"):
        read_manifest(bucket, loc)
    write_manifest(bucket, loc, {"kind": "sqlite"})
    assert read_manifest(bucket, loc)["kind"] == "sqlite"


def test_prune_keeps_the_newest_complete_and_clears_older_leftovers():
    bucket, root = MemoryBucket(), Location.parse("s3://mem/nightly")
    names = [f"2026120{d}T000000Z-0000000{d}" for d in range(1, 6)]
    for name in names:
        bucket.objects[f"nightly/{name}/database/00000.gz"] = b"x"
    for name in (names[0], names[1], names[3]):  # 3 and 5 were killed (5 may still be running)
        bucket.objects[f"nightly/{name}/manifest.json"] = b"{}"
    bucket.objects["nightly/not-a-backup/file"] = b"mine"
    # Kept: 2 and 4. Gone: 1 (complete, older) and no leftover (3 is newer than the oldest kept).
    assert prune(bucket, root, keep=2) == [names[0]]
    assert prune(bucket, root, keep=1) == [names[1], names[2]]
    assert sorted({k.split("/")[1] for k in bucket.objects}) == sorted([names[3], names[4], "not-a-backup"])
    assert prune(bucket, root, keep=5) == []


def test_backup_names_sort_in_time_order():
    from datetime import UTC, datetime

    a = new_backup_name(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    b = new_backup_name(datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC))
    assert a.startswith("20260102T030405Z-") and a < b
