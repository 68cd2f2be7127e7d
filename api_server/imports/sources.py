"""Where imported items come from: the body, an uploaded file, a downloaded URL, a URL list.

Each function parses its source and feeds the import job; they run in a worker thread.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import PurePosixPath
from typing import IO, Any
from urllib.parse import urlsplit

from starlette.datastructures import UploadFile

from api_server.common import egress
from api_server.common.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from api_server.imports import parsers
from api_server.imports.parsers import CONTENT_TYPES, Format
from api_server.imports.service import ImportJob

FILE_TYPES = ".json, .jsonl, .ndjson, .csv, .tsv, .txt"
URL_TIMEOUT = 60.0  # seconds for a whole download


def add_body(job: ImportJob, fmt: Format, body: bytes) -> None:
    job.note_format(fmt.value)
    _add_raw(job, fmt, io.BytesIO(body), "", body)


def _add_raw(job: ImportJob, fmt: Format, raw: IO[bytes], label: str, body: bytes | None = None) -> None:
    where = label.rstrip(": ") or "body"
    if fmt is Format.json:
        items = parsers.json_items(body if body is not None else raw.read(), where)
        job.add(enumerate(items, start=1), label)
    elif fmt is Format.jsonl:
        job.add(parsers.jsonl_items(raw, 1, label), label)
    elif fmt in (Format.csv, Format.tsv):
        delimiter = "\t" if fmt is Format.tsv else ","
        job.add(parsers.csv_items(parsers.text_lines(raw), delimiter, label), label)
    else:
        job.add(parsers.txt_items(parsers.text_lines(raw), job.single_variable, label), label)


def add_uri_list(job: ImportJob, body: bytes) -> None:
    """text/uri-list: every URL becomes one task, as the config's single data field."""
    variable = job.single_variable
    job.note_format("uri-list")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"body: the URL list is not valid UTF-8 (byte {exc.start})") from None
    items = (
        (n, {variable: line.strip()})
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    )
    job.add(items)


def add_upload(job: ImportJob, upload: UploadFile) -> None:
    name = upload.filename or "upload"
    fmt = parsers.format_of_filename(name) or CONTENT_TYPES.get((upload.content_type or "").split(";")[0].strip())
    if fmt is None:
        raise UnsupportedMediaType(
            f"{name}: unsupported file type; task files may be {FILE_TYPES}",
            validation_errors={name: [f"unsupported file type; use {FILE_TYPES}"]},
        )
    raw = upload.file
    raw.seek(0, 2)
    size = raw.tell()
    raw.seek(0)
    job.add_file_upload(name, size, fmt.value)
    _add_raw(job, fmt, raw, f"{name}: ")


def add_url(job: ImportJob, url: str, max_bytes: int) -> None:
    """A task file at a URL is downloaded and imported like an upload; any other URL becomes one task."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise BadRequest(
            f"url {url!r}: only http and https URLs can be imported", validation_errors={"url": ["must be http(s)"]}
        )
    name = PurePosixPath(parts.path).name or parts.netloc
    fmt = parsers.format_of_filename(name)
    if fmt is None:
        job.note_format("url")
        job.add([(1, {job.single_variable: url})], f"{url}: ")
        return
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
        size = _download(url, spool, max_bytes)
        spool.seek(0)
        job.add_file_upload(name, size, fmt.value)
        _add_raw(job, fmt, spool, f"{name}: ")


def _download(url: str, out: Any, max_bytes: int) -> int:
    """The file at `url` (redirects followed, every hop checked by the outbound-address policy)."""
    try:
        return egress.download(url, out, "import", max_bytes=max_bytes, max_seconds=URL_TIMEOUT)
    except egress.EgressRefused as exc:
        raise BadRequest(f"url {url}: {exc.reason}", validation_errors={"url": [exc.reason]}) from None
    except egress.ResponseTooLarge:
        raise PayloadTooLarge(f"url {url}: the file is larger than the upload limit ({max_bytes} bytes)") from None
    except egress.FetchFailed as exc:
        reason = f"download failed with HTTP {exc.status_code}" if exc.status_code else f"download failed: {exc}"
        raise BadRequest(f"url {url}: {reason}", validation_errors={"url": [reason]}) from None
