"""Format encoders, streamed: batches of tasks in, chunks of bytes out (one chunk per batch).

Nothing here holds more than one batch; the JSON formats embed stored JSON text as-is.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

from api_server.exports import jsontext
from api_server.exports.results import Item, items, prettify
from api_server.exports.source import Batch
from api_server.labelconfig.parser import LabelInterface


def json_texts(pages: Iterable[list[str]], *, lines: bool = False) -> Iterator[bytes]:
    """Label Studio's JSON export (a list of tasks) or JSONL (one task per line), from ready JSON texts."""
    if not lines:
        yield b"["
    first = True
    for page in pages:
        if lines:
            page.append("")
            yield "\n".join(page).encode()
        else:
            yield ("" if first else ",\n").encode() + ",\n".join(page).encode()
            first = False
    if not lines:
        yield b"]"


def _records(batches: Iterable[Batch], interface: LabelInterface | None) -> Iterator[list[Item]]:
    for batch in batches:
        out: list[Item] = []
        for task in batch.tasks:
            out.extend(items(task, batch.annotations.get(task[0], []), interface))
        yield out


def json_min(batches: Iterable[Batch], interface: LabelInterface | None) -> Iterator[bytes]:
    yield b"["
    first = True
    for records in _records(batches, interface):
        parts = []
        for item in records:
            record: dict[str, Any] = dict(item.data)
            record["id"] = item.task_id
            for name, values in item.outputs.items():
                record[name] = prettify(values)
            record["annotator"] = item.annotator
            record["annotation_id"] = item.annotation_id
            record["created_at"] = item.created_at
            record["updated_at"] = item.updated_at
            record["lead_time"] = item.lead_time
            parts.append(jsontext.dumps(record))
        if parts:
            yield (b"" if first else b",") + b",\n".join(parts)
            first = False
    yield b"]"


FIXED_COLUMNS = ("annotator", "annotation_id", "created_at", "updated_at", "lead_time", "id")


def csv_columns(data_keys: list[str], control_names: list[str]) -> tuple[list[str], set[str]]:
    """Sorted column names as Label Studio writes them; data keys that collide with a control get `_data_`."""
    colliding = set(data_keys) & set(control_names)
    names = {f"_data_{k}" if k in colliding else k for k in data_keys}
    names.update(control_names)
    names.update(FIXED_COLUMNS)
    return sorted(names), colliding


def table(
    batches: Iterable[Batch], interface: LabelInterface | None, data_keys: list[str], delimiter: str
) -> Iterator[bytes]:
    controls = list(interface.controls) if interface is not None else []
    columns, colliding = csv_columns(data_keys, controls)
    index = {name: i for i, name in enumerate(columns)}
    data_index = {k: index[f"_data_{k}" if k in colliding else k] for k in data_keys}
    fixed = [index[name] for name in FIXED_COLUMNS]
    blank: list[Any] = [""] * len(columns)  # text cells, and the numbers of the fixed columns
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, delimiter=delimiter)
    writer.writerow(columns)
    loads = jsontext.loads
    id_column = fixed[5]
    for batch in batches:
        rows = []
        by_task = batch.annotations
        for task in batch.tasks:
            task_id = task[0]
            annotations = by_task.get(task_id) if by_task else None
            if not annotations:
                # The common case (no annotations): data only.
                row = blank.copy()
                for key, value in loads(task[1]).items():
                    row[data_index[key] if key in data_index else _lost_key(data_index, key)] = (
                        value if type(value) is str else _cell(value)
                    )
                row[id_column] = task_id
                rows.append(row)
                continue
            records = items(task, annotations, interface)
            for item in records:
                row = blank.copy()
                for name, values in item.outputs.items():
                    if name in index:
                        pretty = prettify(values)
                        row[index[name]] = pretty if isinstance(pretty, str) else jsontext.dumps(pretty).decode()
                for key, value in item.data.items():
                    row[data_index[key] if key in data_index else _lost_key(data_index, key)] = _cell(value)
                fixed_values = (
                    "" if item.annotator is None else str(item.annotator),
                    item.annotation_id,
                    item.created_at,
                    item.updated_at,
                    item.lead_time,
                    item.task_id,
                )
                for i, value in zip(fixed, fixed_values, strict=True):
                    row[i] = "" if value is None else value
                rows.append(row)
        writer.writerows(rows)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    tail = buffer.getvalue()
    if tail:
        yield tail.encode()


def _cell(value: Any) -> Any:
    return jsontext.dumps(value).decode() if isinstance(value, (dict, list)) else value


def _lost_key(data_index: dict[str, int], key: str) -> int:
    # SQLite lists a key holding a NUL character cut at the NUL (source.data_keys), so the column
    # is named by that prefix.
    return data_index[key.split("\x00", 1)[0]]


_TOKEN = re.compile(r"\w+(?:[-'.]\w+)*|[^\w\s]")


def conll_tags(text: str, spans: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Tokens of `text` with BIO tags from labeled character spans (first label of each span)."""
    spans = sorted(
        (s for s in spans if isinstance(s.get("start"), int) and isinstance(s.get("end"), int) and s.get("labels")),
        key=lambda s: s["start"],
    )
    out: list[tuple[str, str]] = []
    current: dict[str, Any] | None = None
    for match in _TOKEN.finditer(text):
        start, end = match.span()
        span = next((s for s in spans if s["start"] < end and start < s["end"]), None)
        if span is None:
            out.append((match.group(), "O"))
            current = None
            continue
        prefix = "I-" if span is current else "B-"
        out.append((match.group(), prefix + span["labels"][0]))
        current = span
    return out


def conll(batches: Iterable[Batch], interface: LabelInterface) -> Iterator[bytes]:
    """CoNLL 2003: `token -X- _ TAG` lines, a blank line after each annotated text."""
    key = next(iter(sorted(interface.variables)))
    yield b"-DOCSTART- -X- O\n"
    for records in _records(batches, interface):
        lines: list[str] = []
        for item in records:
            spans = next((v for v in item.outputs.values() if v and v[0].get("type") == "Labels"), [])
            text = item.data.get(key)
            if not isinstance(text, str):
                continue
            lines.extend(f"{token} -X- _ {tag}" for token, tag in conll_tags(text, spans))
            lines.append("")
        if lines:
            yield ("\n".join(lines) + "\n").encode()
