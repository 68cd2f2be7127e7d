"""Label Studio webhook payloads from what services publish.

Services pass ORM rows, ids, or dicts they already serialised (plus bookkeeping such as
`task_count`, `task_id_ranges`). The payload is `{"action": ..., <key>: ..., "project": {...}}`
with Label Studio's keys: `project`, `tasks`, `annotation` (one, or a list for
ANNOTATIONS_CREATED, with `task` alongside), `annotations` (ids, on delete), `review`.
It is bounded: at most `max_objects` objects in full per key, the rest as `{"id": ...}` up
to MAX_IDS, then cut (and `"truncated": true` says so).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api_server.common import ls_json
from api_server.common.secrets import masked_headers, masked_url
from api_server.common.time import as_utc
from api_server.db.base import Base
from api_server.db.models import Annotation, Project, Task
from api_server.webhooks.actions import ACTIONS

MAX_IDS = 10_000
_PLAIN = frozenset({str, int, float, bool})
MAX_RANGES = 1_000


def json_ready(value: Any) -> Any:
    """`value` with rows, timestamps, decimals and models turned into what JSON can hold."""
    if value is None or type(value) in _PLAIN:  # most values: checked first
        return value
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_ready(v) for v in value]
    if isinstance(value, Base):
        return row_dict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# Tasks and annotations as rows in Label Studio's shape (common.ls_json); data, meta and result as stored.
task_dict = ls_json.writer(ls_json.TASK, ls_json.WEBHOOK, {"ts": json_ready})
annotation_dict = ls_json.writer(ls_json.ANNOTATION, ls_json.WEBHOOK, {"ts": json_ready})


def row_dict(row: Base) -> dict[str, Any]:
    if isinstance(row, Task):
        return task_dict(row)
    if isinstance(row, Annotation):
        return annotation_dict(row)
    mapper = sa_inspect(row).mapper
    out = {c.key: json_ready(getattr(row, c.key)) for c in mapper.column_attrs}
    for secret in ("secret", "credentials", "basic_auth_pass", "token_hash"):
        out.pop(secret, None)
    # As the API shows them: a webhook's header values and a password in a URL (an ML backend's) masked.
    if isinstance(out.get("headers"), dict):
        out["headers"] = masked_headers(out["headers"])
    if isinstance(out.get("url"), str):
        out["url"] = masked_url(out["url"])
    return out


def project_dict(session: Session, project: Project) -> dict[str, Any]:
    # The project's public shape (with counters), as Label Studio's project serializer.
    from api_server.projects.service import to_public

    return to_public(session, project).model_dump(mode="json")


class Builder:
    def __init__(self, session: Session, max_objects: int) -> None:
        self.session = session
        self.max_objects = max_objects
        self.truncated = False

    def bound(self, items: list[Any]) -> list[Any]:
        out: list[Any] = []
        for i, item in enumerate(items):
            if i >= MAX_IDS:
                self.truncated = True
                break
            if i < self.max_objects:
                out.append(json_ready(item))
            else:
                ident = _id_of(item)
                if ident is None:
                    self.truncated = True
                    break
                out.append({"id": ident})
        return out

    def load(self, model: type[Task] | type[Annotation], ranges: list[Any]) -> list[Any]:
        """The first rows (by id) within id ranges [[first, last], ...]."""
        conds = [model.id.between(int(r[0]), int(r[1])) for r in ranges[:MAX_RANGES] if len(r) == 2]
        if not conds:
            return []
        stmt = select(model).where(or_(*conds)).order_by(model.id).limit(self.max_objects)
        return list(self.session.scalars(stmt))


def _id_of(item: Any) -> Any:
    if isinstance(item, int):
        return item
    if isinstance(item, dict):
        return item.get("id")
    return getattr(item, "id", None)


def _ids_only(items: list[Any]) -> list[dict[str, Any]]:
    return [{"id": _id_of(i)} for i in items if _id_of(i) is not None]


def _listify(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple | set) else [value]


def build(
    session: Session,
    project_id: int,
    action: str,
    objects: dict[str, Any],
    *,
    max_objects: int,
    project_json: dict[str, Any] | None = None,
) -> dict:
    """The full payload of one event (before any webhook's send_payload choice).

    `project_json`: the project already in its JSON form, for events that do not carry their own
    (the fan-out makes it once per batch; converting it again for every event cost more than the rest)."""
    b = Builder(session, max_objects)
    payload: dict[str, Any] = {"action": action}
    for key, value in objects.items():
        if key == "project":
            continue
        if isinstance(value, list | tuple | set):
            items = list(value)
            if key.endswith("_ranges"):
                payload[key] = json_ready(items[:MAX_RANGES])
                b.truncated |= len(items) > MAX_RANGES
            else:
                payload[key] = b.bound(items)
        else:
            payload[key] = json_ready(value)

    deleting = action.endswith("_DELETED")
    if action == "TASKS_CREATED" and "tasks" not in payload and "task_id_ranges" in objects:
        payload["tasks"] = b.bound(b.load(Task, objects["task_id_ranges"]))
    if action == "ANNOTATIONS_CREATED" and "annotation" not in payload:
        source = objects.get("annotations")
        if source is None and "annotation_id_ranges" in objects:
            source = b.load(Annotation, objects["annotation_id_ranges"])
        payload.pop("annotations", None)
        payload["annotation"] = b.bound(_listify(source or []))
    if action in {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED"}:
        _add_tasks(b, payload, objects)
    if deleting:
        deleted = ACTIONS[action].key if action in ACTIONS else None
        if deleted and deleted in payload and deleted != "project":
            payload[deleted] = _ids_only(_listify(objects.get(deleted, payload[deleted])))

    project = objects.get("project")
    if action == "PROJECT_DELETED":
        payload["project"] = {"id": project_id}
    elif project_json is not None and not isinstance(project, dict):
        payload["project"] = project_json
    elif isinstance(project, dict):
        payload["project"] = json_ready(project)
    else:
        row = project if isinstance(project, Project) else session.get(Project, project_id)
        payload["project"] = project_dict(session, row) if row is not None else {"id": project_id}
    if b.truncated:
        payload["truncated"] = True
    return payload


def _add_tasks(b: Builder, payload: dict[str, Any], objects: dict[str, Any]) -> None:
    """ANNOTATION_* events carry the annotation's task next to it (a list for the bulk event)."""
    if "task" in payload:
        return
    annotations = payload.get("annotation")
    many = isinstance(annotations, list)
    task_ids: list[int] = []
    for a in _listify(annotations) if annotations is not None else []:
        tid = a.get("task") if isinstance(a, dict) else None
        if isinstance(tid, dict):
            tid = tid.get("id")
        if isinstance(tid, int) and tid not in task_ids:
            task_ids.append(tid)
    tasks = [b.session.get(Task, tid) for tid in task_ids[: b.max_objects]]
    found = [task_dict(t) for t in tasks if t is not None]
    if many:
        payload["task"] = found
    elif found:
        payload["task"] = found[0]
