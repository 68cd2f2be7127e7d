"""The two commands: `kubelabel backup --to URI [--keep N]` and `kubelabel restore --from URI`.

The database is the one `serve` uses (DATABASE_URL, or the SQLite file in KUBELABEL_DATA_DIR);
the bucket is reached as `kubelabel sync` reaches it (store.open_provider). Progress and errors
go to stderr; `backup` prints the backup's URI as its last stdout line. With KUBELABEL_RESULT_FILE
set (the CronJob's termination message) a one-line JSON result is written there too.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.exc import SQLAlchemyError

from api_server.backup.dump import dump_postgres, dump_sqlite
from api_server.backup.load import restore
from api_server.backup.store import (
    MANIFEST,
    BackupError,
    BackupOutput,
    Location,
    new_backup_name,
    open_provider,
    prune,
    read_manifest,
    write_manifest,
)
from api_server.common.time import iso, utcnow
from api_server.db.session import is_sqlite
from api_server.settings import Settings
from api_server.storages.providers import StorageError


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _write_result(result: dict[str, Any]) -> None:
    path = BackupOutput().result_file
    if path:
        try:
            Path(path).write_text(json.dumps(result, sort_keys=True), encoding="utf-8")
        except OSError as exc:
            _say(f"warning: cannot write the result file {path}: {exc.strerror}")


# Failures reported as one line: ours, the bucket's, and the database's or the disk's.
FAILURES = (BackupError, StorageError, SQLAlchemyError, psycopg.Error, sqlite3.Error, OSError)


def _fail(message: str) -> int:
    _say(f"error: {message}")
    _write_result({"status": "failed", "message": message[:1000]})
    return 1


def run_backup(to: str, keep: int | None) -> int:
    started = time.monotonic()
    try:
        root = Location.parse(to)
        url = Settings().resolved_database_url()
        name = new_backup_name()
        target = root.child(name)
        provider = open_provider(root)
        try:
            provider.validate()
            _say(f"backup: {'sqlite' if is_sqlite(url) else 'postgresql'} -> {target.uri()}")
            facts = (dump_sqlite if is_sqlite(url) else dump_postgres)(url, provider, target)
            write_manifest(provider, target, {"name": name, "finished_at": iso(utcnow()), **facts})
            pruned = prune(provider, root, keep) if keep else []
        finally:
            provider.close()
    except FAILURES as exc:
        return _fail(str(exc) or type(exc).__name__)
    rows = sum(facts["tables"].values())
    stored = sum(p["size"] for s in facts["streams"] for p in s["parts"])
    _say(
        f"summary: {len(facts['tables'])} tables, {rows} rows, {stored} bytes stored in "
        f"{time.monotonic() - started:.1f}s" + (f"; pruned {', '.join(pruned)}" if pruned else "")
    )
    uri = target.uri() + "/"
    _write_result({"status": "completed", "uri": uri, "rows": rows, "bytes": stored, "revision": facts["revision"],
                   "pruned": len(pruned)})  # fmt: skip
    print(uri, flush=True)
    return 0


def run_restore(source: str) -> int:
    started = time.monotonic()
    try:
        location = Location.parse(source.removesuffix("/" + MANIFEST).rstrip("/"))
        url = Settings().resolved_database_url()
        provider = open_provider(location)
        try:
            manifest = read_manifest(provider, location)
            _say(f"restore: {manifest['kind']} backup {location.uri()} (revision {manifest.get('revision')})")
            counts = restore(manifest, provider, location, url)
        finally:
            provider.close()
    except FAILURES as exc:
        return _fail(str(exc) or type(exc).__name__)
    rows = sum(counts.values())
    _say(f"summary: {len(counts)} tables, {rows} rows restored in {time.monotonic() - started:.1f}s")
    _write_result({"status": "completed", "uri": location.uri() + "/", "rows": rows})
    return 0
