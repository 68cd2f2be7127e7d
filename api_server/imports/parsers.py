"""Task file formats: JSON, JSONL, CSV, TSV and TXT, parsed into items with their row numbers.

Row numbers are 1-based positions of tasks in their source (a JSON list element, a JSONL
line, a CSV record after the header, a TXT line), so an error can name exactly which one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import IO, Any

import orjson

from api_server.common.errors import BadRequest


class Format(StrEnum):
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    tsv = "tsv"
    txt = "txt"


# Content types (without parameters) and file extensions of each format.
CONTENT_TYPES: dict[str, Format] = {
    "application/json": Format.json,
    "text/json": Format.json,
    "application/x-ndjson": Format.jsonl,
    "application/jsonl": Format.jsonl,
    "application/json-lines": Format.jsonl,
    "application/jsonlines": Format.jsonl,
    "application/x-jsonlines": Format.jsonl,
    "text/csv": Format.csv,
    "text/tab-separated-values": Format.tsv,
    "text/tsv": Format.tsv,
    "text/plain": Format.txt,
}
EXTENSIONS: dict[str, Format] = {
    ".json": Format.json,
    ".jsonl": Format.jsonl,
    ".ndjson": Format.jsonl,
    ".csv": Format.csv,
    ".tsv": Format.tsv,
    ".txt": Format.txt,
}


def format_of_filename(name: str) -> Format | None:
    lower = name.lower()
    for ext, fmt in EXTENSIONS.items():
        if lower.endswith(ext):
            return fmt
    return None


def error(where: str, message: str) -> BadRequest:
    return BadRequest(f"{where}: {message}", validation_errors={where: [message]})


def json_items(body: bytes, where: str = "body") -> list[Any]:
    """A JSON list of tasks, or one task object (a list of one)."""
    if not body.strip():
        raise error(where, "no tasks: the body is empty")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        message = f"malformed JSON at line {exc.lineno} column {exc.colno} (char {exc.pos}): {exc.msg}"
        raise error(where, message) from None
    if isinstance(parsed, dict):
        return [parsed]
    if isinstance(parsed, list):
        return parsed
    raise error(where, "expected a JSON list of tasks or one task object")


def jsonl_items(lines: Iterable[bytes], first_line: int, label: str) -> Iterator[tuple[int, Any]]:
    """Items of JSONL lines (blank lines skipped); row numbers are line numbers."""
    loads = orjson.loads
    for n, line in enumerate(lines, start=first_line):
        if not line or line.isspace():
            continue
        try:
            yield n, loads(line)
        except orjson.JSONDecodeError as exc:
            raise error(f"{label}row {n}", f"malformed JSON on line {n} column {exc.colno}: {exc.msg}") from None


def text_lines(raw: IO[bytes]) -> Iterator[str]:
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def csv_items(lines: Iterable[str], delimiter: str, label: str) -> Iterator[tuple[int, dict[str, str]]]:
    """CSV/TSV records as dicts keyed by the header; every record must match the header's width."""
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    name = "TSV" if delimiter == "\t" else "CSV"
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise error(f"{label}header", f"the {name} has no header row: the first line must name the columns")
        header = [h.strip() for h in header]
        if len(set(header)) != len(header):
            dupes = sorted({h for h in header if header.count(h) > 1})
            raise error(f"{label}header", f"duplicate column name(s): {', '.join(dupes)}")
        width = len(header)
        row = 0
        for values in reader:
            if not values:
                continue
            row += 1
            if len(values) != width:
                raise error(
                    f"{label}row {row}",
                    f"{name} record {row} (line {reader.line_num}) has {len(values)} values, "
                    f"but the header has {width} columns",
                )
            yield row, dict(zip(header, values, strict=True))
    except csv.Error as exc:
        raise error(f"{label}row {reader.line_num}", f"malformed {name} at line {reader.line_num}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{label}body", f"the {name} is not valid UTF-8 (byte {exc.start})") from None


def txt_items(lines: Iterable[str], variable: str, label: str) -> Iterator[tuple[int, dict[str, str]]]:
    """One task per non-empty line, the line as the config's single data field."""
    try:
        for n, line in enumerate(lines, start=1):
            value = line.rstrip("\r\n")
            if value.strip():
                yield n, {variable: value}
    except UnicodeDecodeError as exc:
        raise error(f"{label}body", f"the text is not valid UTF-8 (byte {exc.start})") from None
