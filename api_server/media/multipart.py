"""A multipart import body read as a stream: media files go straight to their place.

Starlette's form parser keeps each file in a temporary file (memory up to 1 MiB). Here a
media part (any file that is not a task file) is written as it arrives to its generated
name in the data directory (or a staging file, for a bucket), its first bytes sniffed and
its size checked on the way, so a `.png` that is really HTML or a file past the size limit
is refused as soon as it shows, naming the file. Task files (JSON, CSV, ...) and `url`
fields are kept as Starlette keeps them, for the import to parse afterwards.

Nothing of the request is held in memory whole; a refused request is still read to its end
(within the body limit) so the client gets the error rather than a reset connection.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncGenerator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import anyio
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api_server.common.errors import ApiError, BadRequest, PayloadTooLarge, UnsupportedMediaType
from api_server.imports.parsers import CONTENT_TYPES, format_of_filename
from api_server.media import sniff
from api_server.media.store import Target, generated_name


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int
    max_files: int
    types: tuple[str, ...]  # accepted content types, `type/*` wildcards allowed

    @classmethod
    def parse(cls, max_file_mb: int, max_files: int, types: str) -> Limits:
        accepted = tuple(t.strip().lower() for t in types.split(",") if t.strip())
        return cls(max_file_mb * 1024 * 1024, max_files, accepted)

    def accepts(self, content_type: str) -> bool:
        return any(fnmatchcase(content_type, pattern) for pattern in self.types)


@dataclass
class StoredMedia:
    """One media file of the request, in its place once the parse is done."""

    original_name: str
    name: str
    content_type: str
    size: int
    path: Path
    key: str | None = None
    etag: str = ""
    digest: bytes = b""


def is_media(filename: str, content_type: str | None) -> bool:
    """Task files (by extension, else by the part's Content-Type) are imported as tasks; any other file is media."""
    if sniff.family_of_name(filename):
        return True
    if format_of_filename(filename):
        return False
    return CONTENT_TYPES.get((content_type or "").split(";")[0].strip().lower()) is None


def display_name(filename: str) -> str:
    """The upload's name as kept for display: control characters and lone surrogates (which no database
    column takes) become `_`; the name never reaches a path."""
    cleaned = _UNSAFE_NAME.sub("_", filename)[:255]
    return cleaned or "upload"


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def refused(name: str, reason: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(f"{name}: {reason}", validation_errors={name: [reason]})


class MediaSink:
    """The file object a media part is written to: sniffs, counts, hashes and writes (in worker threads).

    Starlette rewinds (`seek(0)`) each part once it has ended: that is when the file is checked
    a last time, closed, renamed with the extension of its sniffed type and handed on.
    """

    def __init__(self, filename: str, path: Path, limits: Limits, hashing: bool, done: Any) -> None:
        self.filename = filename
        self.limits = limits
        self.path = path
        self.file = path.open("xb")
        self.head = b""
        self.size = 0
        self.content_type: str | None = None
        self.hash = hashlib.sha256() if hashing else None
        self.done = done
        self.placed: Future[tuple[str | None, str]] | None = None

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limits.max_file_bytes:
            mb = self.limits.max_file_bytes // (1024 * 1024)
            raise PayloadTooLarge(
                f"{self.filename}: larger than the limit of {mb} MiB per file (KUBELABEL_MEDIA_MAX_FILE_MB)",
                validation_errors={self.filename: [f"larger than {mb} MiB"]},
            )
        if self.content_type is None:
            self.head += data[: sniff.HEAD_BYTES - len(self.head)]
            if len(self.head) >= sniff.HEAD_BYTES:
                self._check()
        self.file.write(data)
        if self.hash is not None:
            self.hash.update(data)
        return len(data)

    def _check(self) -> None:
        found = sniff.sniff(self.head, self.filename)
        claimed = sniff.family_of_name(self.filename)
        if found is None:
            raise refused(
                self.filename,
                f"{sniff.describe(self.head)}; media files may be images, audio, video or PDF "
                "(checked by their content), task files .json .jsonl .csv .tsv .txt",
            )
        if claimed is not None and claimed != sniff.family(found):
            raise refused(self.filename, f"the name says {claimed} but the bytes are {found}")
        if not self.limits.accepts(found):
            raise refused(self.filename, f"{found} files are not accepted here (KUBELABEL_MEDIA_TYPES)")
        self.head = b""
        self.content_type = found

    def seek(self, offset: int) -> int:
        if self.content_type is None:
            self._check()
        if not self.file.closed:
            self.file.close()
            final = self.path.with_suffix(sniff.EXTENSIONS[self.content_type or ""])
            self.path.rename(final)
            self.path = final
            self.done(self)
        return 0

    def close(self) -> None:
        self.file.close()


class _Parser(MultiPartParser):
    def __init__(
        self, headers: Headers, stream: AsyncGenerator[bytes, None], target: Target, limits: Limits, hashing: bool
    ) -> None:
        super().__init__(headers, stream, max_files=limits.max_files, max_fields=1000)
        self.target = target
        self.limits = limits
        self.hashing = hashing
        self.sinks: list[MediaSink] = []
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="media-upload") if target.bucket else None

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        upload = self._current_part.file
        if upload is None or not is_media(upload.filename or "", upload.content_type):
            return
        upload.file.close()  # the temporary file Starlette made: media goes elsewhere
        filename = display_name(upload.filename or "")
        path = self.target.new_path(generated_name(".part"))
        sink = MediaSink(filename, path, self.limits, self.hashing, self._place)
        self.sinks.append(sink)
        self._current_part.file = UploadFile(file=sink, filename=filename, headers=upload.headers)  # type: ignore[arg-type]  # a file-like sink

    def _place(self, sink: MediaSink) -> None:
        """A finished file goes to its bucket while the next parts are read (locally it is in place)."""
        if self.pool is not None:
            # The type is sniffed by now: a file of no known type is refused before it is placed.
            sink.placed = self.pool.submit(
                self.target.put, sink.path, sink.path.name, sink.size, sink.content_type or ""
            )

    def undo(self) -> None:
        """Remove every file this request stored or staged (it failed)."""
        for sink in self.sinks:
            sink.close()
            key = None
            if sink.placed is not None:
                try:
                    key = sink.placed.result()[0]
                except Exception:  # noqa: BLE001 - that upload failed: nothing of it to remove
                    key = None
            self.target.remove(sink.path, key)


@dataclass
class MediaForm:
    """The parsed form: its items in order (field name, text | UploadFile | StoredMedia)."""

    items: list[tuple[str, Any]]
    target: Target
    kept: bool = False  # the import is committing: the files are its tasks' now

    @property
    def media(self) -> list[StoredMedia]:
        return [v for _, v in self.items if isinstance(v, StoredMedia)]

    def discard(self) -> None:
        """Remove every stored file (the import failed, or answered a replay). Runs in a worker thread."""
        for media in self.media:
            self.target.remove(media.path, media.key)

    async def close(self) -> None:
        for _, value in self.items:
            if isinstance(value, UploadFile):
                await value.close()
        await anyio.to_thread.run_sync(self.target.close)


async def parse(
    headers: Headers, stream: AsyncGenerator[bytes, None], target: Target, limits: Limits, *, hashing: bool
) -> MediaForm:
    """Read the whole multipart body; media files end in their place, task files and fields are kept."""
    parser = _Parser(headers, stream, target, limits, hashing)
    try:
        try:
            form = await parser.parse()
        except (MultiPartException, ApiError) as exc:
            async for _ in stream:  # read the rest, so the client gets this answer, not a reset connection
                pass
            if isinstance(exc, MultiPartException):
                raise BadRequest(f"file: {exc.message}", validation_errors={"file": [exc.message]}) from None
            raise
        items: list[tuple[str, Any]] = []
        value: UploadFile | str | StoredMedia
        for field_name, value in form.multi_items():
            if isinstance(value, UploadFile) and isinstance(value.file, MediaSink):
                sink = value.file
                key, etag = (None, "")
                if sink.placed is not None:
                    key, etag = await anyio.to_thread.run_sync(sink.placed.result)
                value = StoredMedia(
                    original_name=sink.filename,
                    name=sink.path.name,
                    content_type=sink.content_type or "",
                    size=sink.size,
                    path=sink.path,
                    key=key,
                    etag=etag,
                    digest=sink.hash.digest() if sink.hash else b"",
                )
            items.append((field_name, value))
        return MediaForm(items, target)
    except BaseException:
        await anyio.to_thread.run_sync(parser.undo)
        for _, value in parser.items:
            if isinstance(value, UploadFile) and not isinstance(value.file, MediaSink):
                value.file.close()
        raise
    finally:
        if parser.pool is not None:
            parser.pool.shutdown(wait=False)
