"""Label Studio's task and annotation JSON: the one field table that every writer of them follows.

The same objects leave the server along five paths:

    API      /api/annotations/... and /api/tasks/{id}/annotations/   annotations.schemas.to_public
    TASKS    /api/tasks/... (annotations nested in a single task)     tasks.serialize
    EXPORT   the JSON and JSONL export, built by the database          exports.rawsql
    WEBHOOK  rows in webhook payloads                                  webhooks.payloads (webhooks.bulk in SQL)
    STORAGE  export-storage objects, one per task                      storages.export

Each writer takes its keys, in this order, from ANNOTATION, TASK and TASK_NESTED: `key` is the
JSON key, `column` the row attribute (the table's column of the same name) it comes from, and
`kind` how its value becomes JSON (`doc`: stored JSON embedded as it is; `ts`: a UTC timestamp).
A field without a column is derived; its Python rule is below (the SQL writer has the same rule in
SQL), and a writer that lacks the rule for a field the table gives it fails at import. A field
that only some paths write names them in `only`, and `why` says why the others do not; every
other field is written by all five. tests/integration/api/test_ls_json_shapes.py holds every
path to this table on SQLite and PostgreSQL.

Values of shared keys are the same on every path; only their text differs where the transport
does (a timestamp ends in `Z` in the API, the tasks API and the export, in `+00:00` in webhook
payloads and storage objects).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

API = "api"
TASKS = "tasks"
EXPORT = "export"
WEBHOOK = "webhook"
STORAGE = "storage"
PATHS = frozenset({API, TASKS, EXPORT, WEBHOOK, STORAGE})


@dataclass(frozen=True, slots=True)
class Field:
    key: str
    column: str | None  # None: derived (see the rules below)
    kind: str  # int | float | str | bool | ts | doc | derived
    only: frozenset[str] = PATHS
    why: str = ""


def _only(*paths: str) -> frozenset[str]:
    return frozenset(paths)


# Label Studio's annotation (its export's key order), with kubelabel's review_status and state.
ANNOTATION: tuple[Field, ...] = (
    Field("id", "id", "int"),
    Field("completed_by", "completed_by_id", "int"),
    Field("result", "result", "doc"),
    Field("was_cancelled", "was_cancelled", "bool"),
    Field("ground_truth", "ground_truth", "bool"),
    Field("created_at", "created_at", "ts"),
    Field("updated_at", "updated_at", "ts"),
    Field("draft_created_at", "draft_created_at", "ts"),
    Field("lead_time", "lead_time", "float"),
    Field(
        "prediction",
        None,
        "derived",
        _only(EXPORT, STORAGE),
        "Label Studio's export writes the annotation's source prediction object, `{}` when there is none; "
        "kubelabel links it by id (parent_prediction), which every path writes, so the exports write `{}`. "
        "Label Studio's annotation API has no such key.",
    ),
    Field(
        "result_count",
        None,
        "derived",
        _only(EXPORT, STORAGE),
        "a key of Label Studio's export only (not of its annotation API): the number of result items",
    ),
    Field("import_id", "import_id", "int"),
    Field("last_action", "last_action", "str"),
    Field("bulk_created", "bulk_created", "bool"),
    Field("task", "task_id", "int"),
    Field("project", "project_id", "int"),
    Field("updated_by", "updated_by_id", "int"),
    Field("parent_prediction", "parent_prediction_id", "int"),
    Field("parent_annotation", "parent_annotation_id", "int"),
    # kubelabel: the review verdict, accepted | rejected | null when not reviewed.
    Field("review_status", "review_status", "str"),
    # kubelabel: submitted | skipped | accepted | rejected.
    Field("state", None, "derived"),
    Field(
        "created_username",
        None,
        "derived",
        _only(API),
        "Label Studio's annotation API shows the author's name (one lookup per author); its export and "
        "payload rows do not. Webhook events about one annotation carry the API's form, so they have it.",
    ),
    Field("created_ago", None, "derived", _only(API), "as created_username: a display field of the API"),
)

# A task's own fields: the same on every path.
TASK: tuple[Field, ...] = (
    Field("id", "id", "int"),
    Field("data", "data", "doc"),
    Field("meta", "meta", "doc"),
    Field("created_at", "created_at", "ts"),
    Field("updated_at", "updated_at", "ts"),
    Field("inner_id", "inner_id", "int"),
    Field("total_annotations", "total_annotations", "int"),
    Field("cancelled_annotations", "cancelled_annotations", "int"),
    Field("total_predictions", "total_predictions", "int"),
    Field("is_labeled", "is_labeled", "bool"),
    Field("overlap", "overlap", "int"),
    # kubelabel: the task's workflow state (docs/workflow.md).
    Field("state", "state", "str"),
    Field("project", "project_id", "int"),
    # The upload's id, as Label Studio's task API (its export writes the file's name instead).
    Field("file_upload", "file_upload_id", "int"),
    Field("updated_by", "updated_by_id", "int"),
)

# What a task carries nested, after its own fields.
_NESTED_WHY = (
    "a webhook payload carries the annotation beside its task (Label Studio's shape), not inside it; "
    "the tasks API nests them for a single task (or fields=all), not in its plain list"
)
TASK_NESTED: tuple[Field, ...] = (
    Field("annotations", None, "derived", _only(TASKS, EXPORT, STORAGE), _NESTED_WHY),
    # STORAGE writes [] here: the export-storage job does not read predictions.
    Field("predictions", None, "derived", _only(TASKS, EXPORT, STORAGE), _NESTED_WHY),
    # Drafts are never exported or listed with a task: always [] (Label Studio's key).
    Field("drafts", None, "derived", _only(TASKS, EXPORT, STORAGE), _NESTED_WHY),
)


def fields_of(table: Sequence[Field], path: str) -> tuple[Field, ...]:
    return tuple(f for f in table if path in f.only)


def keys_of(table: Sequence[Field], path: str) -> tuple[str, ...]:
    return tuple(f.key for f in table if path in f.only)


# -- the derived fields' rules (exports.rawsql writes the same in SQL) ---------------------------


def annotation_state(review_status: str | None, was_cancelled: bool) -> str:
    return review_status or ("skipped" if was_cancelled else "submitted")


def annotation_state_sql(a: str) -> str:
    """annotation_state in SQL, of a row (or alias) `a` of annotations (the export, webhook bulk writes)."""
    return f"coalesce(nullif({a}.review_status, ''), CASE WHEN {a}.was_cancelled THEN 'skipped' ELSE 'submitted' END)"


def result_count(result: Any) -> int:
    return len(result) if isinstance(result, list) else 0


# The same, read from a row (an ORM row, or a query row of its columns with `result` parsed).
ROW_RULES: dict[str, Callable[[Any], Any]] = {
    "state": lambda row: annotation_state(row.review_status, row.was_cancelled),
    "result_count": lambda row: result_count(row.result),
    "prediction": lambda row: {},
}


# -- Python writers ----------------------------------------------------------------------------


def writer(
    table: Sequence[Field],
    path: str,
    convert: Mapping[str, Callable[[Any], Any]] | None = None,
    derive: Mapping[str, Callable[[Any], Any]] | None = None,
) -> Callable[[Any], dict[str, Any]]:
    """row -> {key: value} for one path: columns read (through `convert[kind]` where given), derived fields
    computed by `derive[key](row)`, else by ROW_RULES. Built once per path, at import: a rule missing or
    left over fails there."""
    convert = convert or {}
    derive = dict(derive or {})
    plan: list[tuple[str, Callable[[Any], Any]]] = []
    for f in fields_of(table, path):
        if f.column is None:
            rule = derive.pop(f.key, None) or ROW_RULES.get(f.key)
            if rule is None:
                raise LookupError(f"the {path} writer has no rule for the derived field {f.key!r}")
            plan.append((f.key, rule))
            continue
        get = attrgetter(f.column)
        to_json = convert.get(f.kind)
        plan.append((f.key, get if to_json is None else _then(get, to_json)))
    if derive:
        raise LookupError(f"the {path} writer derives {sorted(derive)}, which the table does not give it")

    def write(row: Any) -> dict[str, Any]:
        return {key: value(row) for key, value in plan}

    return write


def _then(get: Callable[[Any], Any], to_json: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda row: to_json(get(row))
