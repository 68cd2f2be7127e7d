"""Training examples: (text, label) pairs taken from Label Studio tasks and annotations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubelabel_model_server.labelconfig import ChoicesSchema


@dataclass(frozen=True)
class Example:
    task_id: int
    text: str
    label: str
    annotation_id: int | None = None


def task_text(task: Mapping[str, Any], schema: ChoicesSchema) -> str | None:
    data = task.get("data")
    if not isinstance(data, Mapping):
        return None
    value = data.get(schema.data_key)
    return value if isinstance(value, str) and value.strip() else None


def annotation_label(annotation: Mapping[str, Any], schema: ChoicesSchema) -> str | None:
    """The chosen label of one annotation, or None (cancelled, other control, unknown label)."""
    if annotation.get("was_cancelled"):
        return None
    result = annotation.get("result")
    if not isinstance(result, list):
        return None
    for item in result:
        if not isinstance(item, Mapping) or item.get("from_name") != schema.from_name:
            continue
        value = item.get("value")
        choices = value.get("choices") if isinstance(value, Mapping) else None
        if isinstance(choices, list) and choices and choices[0] in schema.labels:
            # Multi-choice annotations train on their first choice (single-label model).
            return str(choices[0])
    return None


def _newest_first(annotations: Iterable[Any]) -> list[Mapping[str, Any]]:
    items = [a for a in annotations if isinstance(a, Mapping)]
    return sorted(items, key=lambda a: (str(a.get("updated_at") or ""), a.get("id") or 0), reverse=True)


def example_from_task(task: Mapping[str, Any], schema: ChoicesSchema) -> Example | None:
    """One example per task: the newest usable annotation wins (ground truth first)."""
    text, task_id = task_text(task, schema), task.get("id")
    if text is None or not isinstance(task_id, int):
        return None
    annotations = _newest_first(task.get("annotations") or [])
    annotations.sort(key=lambda a: not a.get("ground_truth"))  # stable: keeps newest-first within groups
    for annotation in annotations:
        label = annotation_label(annotation, schema)
        if label is not None:
            return Example(task_id=task_id, text=text, label=label, annotation_id=annotation.get("id"))
    return None


def examples_from_tasks(tasks: Iterable[Mapping[str, Any]], schema: ChoicesSchema) -> dict[int, Example]:
    examples: dict[int, Example] = {}
    for task in tasks:
        if isinstance(task, Mapping):
            example = example_from_task(task, schema)
            if example is not None:
                examples[example.task_id] = example
    return examples


def example_from_event(event: Mapping[str, Any], schema: ChoicesSchema) -> Example | None:
    """The example an ANNOTATION_CREATED/UPDATED webhook payload carries."""
    task, annotation = event.get("task"), event.get("annotation")
    if not isinstance(task, Mapping) or not isinstance(annotation, Mapping):
        return None
    text, task_id = task_text(task, schema), task.get("id")
    label = annotation_label(annotation, schema)
    if text is None or label is None or not isinstance(task_id, int):
        return None
    return Example(task_id=task_id, text=text, label=label, annotation_id=annotation.get("id"))
