"""Annotation results keyed by control name, as Label Studio's converter shapes them (JSON_MIN, CSV)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api_server.common import time
from api_server.exports import jsontext
from api_server.labelconfig.parser import LabelInterface


@dataclass
class Item:
    """One export record: a task with one of its annotations (or with none)."""

    task_id: int
    data: dict[str, Any]
    outputs: dict[str, list[dict[str, Any]]]
    annotator: int | None
    annotation_id: int | None
    created_at: str | None
    updated_at: str | None
    lead_time: float | None


def iso(value: datetime | str | None) -> str | None:
    return value if value is None or isinstance(value, str) else time.iso(value, z=True)


def items(task: tuple[int, str], annotations: list[Any], interface: LabelInterface | None) -> Iterator[Item]:
    """Records of a task: one per non-cancelled annotation, newest first; one bare record when it has none."""
    task_id, raw = task[0], task[1]  # a TaskRow or a plain (id, data text) tuple
    data = jsontext.loads(raw)
    if not annotations:
        yield Item(task_id, data, {}, None, None, None, None, None)
        return
    kept = [a for a in annotations if not a.was_cancelled]
    kept.sort(key=lambda a: (iso(a.created_at) or "", a.id), reverse=True)
    controls = interface.controls if interface is not None else {}
    for ann in kept:
        outputs: dict[str, list[dict[str, Any]]] = {}
        for region in jsontext.loads(ann.result):
            if not isinstance(region, dict):
                continue
            name = region.get("from_name")
            control = controls.get(name) if name else None
            if control is None and controls:
                continue
            value = dict(region.get("value") or {})
            value["type"] = control.tag if control is not None else region.get("type", "unknown")
            for key in ("original_width", "original_height"):
                if key in region:
                    value[key] = region[key]
            outputs.setdefault(name, []).append(value)  # type: ignore[arg-type]  # None: no from_name, no config (as before)
        yield Item(
            task_id,
            data,
            outputs,
            ann.completed_by_id,
            ann.id,
            iso(ann.created_at),
            iso(ann.updated_at),
            ann.lead_time,
        )


def prettify(values: list[dict[str, Any]]) -> Any:
    """One label as a string when a Choices/TextArea control gave exactly one; else the list of values."""
    out: list[Any] = []
    tag = None
    for value in values:
        v = dict(value)
        tag = v.pop("type", None)
        if tag == "Choices" and len(v.get("choices", [])) == 1:
            out.append(v["choices"][0])
        elif tag == "TextArea" and len(v.get("text", [])) == 1:
            out.append(v["text"][0])
        else:
            out.append(v)
    return out[0] if tag in ("Choices", "TextArea") and len(out) == 1 else out
