"""The import sync engine: bucket listing -> batches of task items -> a sink.

It is transport-agnostic: `kubelabel sync` sends batches to the API over HTTP, the API
server's own background sync writes them to the database; both sinks upsert by
(storage, key, row), which is what makes a sync idempotent and a killed sync resumable
(restart it: known objects are skipped, the rest are added, none twice).

Memory stays flat in the bucket size: the listing is consumed page by page through a
bounded queue (a producer thread lists while the sink works), and only one batch of items
is held at a time. A JSON/JSONL task file is read one at a time (JSONL streamed by line).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from api_server.storages.config import StorageConfig
from api_server.storages.providers import ObjectInfo, StorageError, StorageProvider

MAX_ERROR_SAMPLES = 20


@dataclass(slots=True)
class ImportItem:
    """One task to upsert: an object (blob-URL mode, `task` None) or one row of a task file."""

    key: str
    etag: str
    row: int = 0
    task: dict[str, Any] | None = None

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "etag": self.etag, "row": self.row}
        if self.task is not None:
            out["task"] = self.task
        return out


@dataclass
class BatchResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)  # rows refused (e.g. missing the config's data fields)


class ImportSink(Protocol):
    def known_etags(self, keys: list[str]) -> dict[str, str]:
        """For the keys already linked to tasks of this storage: key -> stored etag."""

    def submit(self, items: list[ImportItem], *, update_changed: bool) -> BatchResult:
        """Upsert the items by (key, row), atomically per call."""


@dataclass
class SyncProgress:
    listed: int = 0
    matched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def add(self, result: BatchResult) -> None:
        self.created += result.created
        self.updated += result.updated
        self.unchanged += result.unchanged
        for message in result.errors:
            self.error(message)

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(message)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self) -> str:
        rate = self.listed / self.elapsed if self.elapsed > 0 else 0.0
        return (
            f"listed={self.listed} matched={self.matched} created={self.created} updated={self.updated} "
            f"unchanged={self.unchanged} errors={self.errors} elapsed={self.elapsed:.1f}s rate={rate:.0f}/s"
        )

    @property
    def status(self) -> str:
        return "completed_with_errors" if self.errors else "completed"

    def summary(self) -> dict[str, Any]:
        return {
            "listed": self.listed,
            "matched": self.matched,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "duration_seconds": round(self.elapsed, 3),
        }


# -- task files ------------------------------------------------------------------------------


def _as_task(obj: Any) -> dict[str, Any]:
    """A Label Studio task ({"data": {...}, ...}) or a bare data object (wrapped)."""
    if not isinstance(obj, dict):
        raise ValueError(f"a task must be a JSON object, not {type(obj).__name__}")
    if isinstance(obj.get("data"), dict):
        return {k: obj[k] for k in ("data", "annotations", "predictions", "meta") if k in obj}
    return {"data": obj}


def _lines(stream: Any, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
    """Lines of a binary stream, read in chunks (SDK streams are not all io-compatible)."""
    rest = b""
    while chunk := stream.read(chunk_size):
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def iter_task_file(provider: StorageProvider, key: str) -> Iterator[dict[str, Any]]:
    """The tasks of one JSON (a task or a list of tasks) or JSONL (one per line) object."""
    lower = key.lower()
    if lower.endswith((".jsonl", ".ndjson")):
        stream = provider.open(key)
        try:
            for number, line in enumerate(_lines(stream), start=1):
                if line.strip():
                    try:
                        yield _as_task(json.loads(line))
                    except ValueError as exc:
                        raise ValueError(f"line {number}: {exc}") from None
        finally:
            stream.close()
        return
    document = json.loads(provider.read(key))
    if isinstance(document, list):
        for task in document:
            yield _as_task(task)
    else:
        yield _as_task(document)


# -- listing with read-ahead ---------------------------------------------------------------

_DONE = object()


def _batches_in_background(objects: Iterable[ObjectInfo], size: int, depth: int = 4) -> Iterator[list[ObjectInfo]]:
    """Batches of `objects`, listed by a producer thread at most `depth` batches ahead."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        batch: list[ObjectInfo] = []
        try:
            for obj in objects:
                batch.append(obj)
                if len(batch) >= size:
                    while not stop.is_set():
                        try:
                            q.put(batch, timeout=0.2)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                    batch = []
            if batch:
                q.put(batch)
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    thread = threading.Thread(target=produce, name="storage-lister", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


# -- the engine ------------------------------------------------------------------------------


def run_import(
    provider: StorageProvider,
    config: StorageConfig,
    sink: ImportSink,
    *,
    batch_size: int = 1000,
    on_progress: Callable[[SyncProgress], None] | None = None,
    progress: SyncProgress | None = None,
    in_flight: int = 2,
) -> SyncProgress:
    """Sync the bucket into the sink. Per-object problems are counted, storage errors raise.

    Pass `progress` to watch the counters from another thread while it runs.
    """
    progress = progress if progress is not None else SyncProgress()
    key_filter = config.key_filter()

    def counted(objects: Iterable[ObjectInfo]) -> Iterator[ObjectInfo]:
        for obj in objects:
            progress.listed += 1
            if key_filter.matches(obj.key):
                progress.matched += 1
                yield obj

    listing = counted(provider.iter_objects(config.prefix, recursive=config.recursive_scan))
    # Blob-URL batches are independent (disjoint keys): keep `in_flight` submits going so one
    # batch's transfer and parsing overlap the previous batch's database write.
    pending: deque[Future[BatchResult]] = deque()
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="sync-submit") as pool:
        try:
            for objects in _batches_in_background(listing, batch_size):
                if config.use_blob_urls:
                    items = [ImportItem(o.key, o.etag) for o in objects]
                    pending.append(pool.submit(sink.submit, items, update_changed=config.update_changed))
                    while len(pending) >= in_flight:
                        progress.add(pending.popleft().result())
                else:
                    _import_task_files(provider, config, sink, objects, batch_size, progress)
                if on_progress is not None:
                    on_progress(progress)
            while pending:
                progress.add(pending.popleft().result())
        finally:
            for future in pending:
                future.cancel()
    if on_progress is not None:
        on_progress(progress)
    return progress


def _import_task_files(
    provider: StorageProvider,
    config: StorageConfig,
    sink: ImportSink,
    objects: list[ObjectInfo],
    batch_size: int,
    progress: SyncProgress,
) -> None:
    """Import the task files of one listing batch.

    A file counts as imported once its row 0 is linked (`known_etags`). Row 0 is therefore
    always written last: a file too big for one call sends its later rows first and its
    first chunk at the end, so a sync killed inside a file re-reads that file on resume.
    """
    known = sink.known_etags([o.key for o in objects])
    pending: list[ImportItem] = []

    def flush(items: list[ImportItem]) -> None:
        if items:
            progress.add(sink.submit(items, update_changed=config.update_changed))

    for obj in objects:
        if obj.key in known and (not config.update_changed or known[obj.key] == obj.etag):
            progress.unchanged += 1
            continue
        head: list[ImportItem] = []  # rows 0..batch_size-1, sent after the rest
        chunk: list[ImportItem] = []
        try:
            for row, task in enumerate(iter_task_file(provider, obj.key)):
                target = head if row < batch_size else chunk
                target.append(ImportItem(obj.key, obj.etag, row, task))
                if len(chunk) >= batch_size:
                    flush(chunk)
                    chunk = []
            flush(chunk)
        except StorageError as exc:
            progress.error(str(exc))
            continue
        except (ValueError, UnicodeDecodeError) as exc:
            progress.error(f"{config.uri(obj.key)}: not a JSON/JSONL task file ({exc})")
            continue
        if len(pending) + len(head) > batch_size:
            flush(pending)
            pending = []
        pending.extend(head)
    flush(pending)
