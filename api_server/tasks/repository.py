"""Task queries: filtered pages over (project_id, id), and annotations/predictions of many tasks at once.

Task data is selected as stored JSON text and handed to the response as-is (an
orjson Fragment), so listing never parses and re-serialises it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, Text, cast, delete, func, select
from sqlalchemy.orm import Session

from api_server.common import ls_json
from api_server.common.errors import BadRequest
from api_server.db.models import Annotation, Prediction, Task
from api_server.views.filters import Order

TASK_COLUMNS = (
    Task.id,
    Task.project_id,
    Task.inner_id,
    cast(Task.data, Text).label("data"),
    cast(Task.meta, Text).label("meta"),
    Task.state,
    Task.is_labeled,
    Task.overlap,
    Task.total_annotations,
    Task.cancelled_annotations,
    Task.total_predictions,
    Task.prediction_score,
    Task.file_upload_id,
    Task.updated_by_id,
    Task.created_at,
    Task.updated_at,
)
# Every column the Label Studio annotation shape reads (common.ls_json), stored JSON as text.
ANNOTATION_COLUMNS = tuple(
    cast(getattr(Annotation, f.column), Text).label(f.column) if f.kind == "doc" else getattr(Annotation, f.column)
    for f in ls_json.ANNOTATION
    if f.column is not None
)
PREDICTION_COLUMNS = (
    Prediction.id,
    Prediction.task_id,
    Prediction.project_id,
    cast(Prediction.result, Text).label("result"),
    Prediction.score,
    Prediction.model_version,
    Prediction.ml_backend_id,
    Prediction.created_at,
    Prediction.updated_at,
)


@dataclass(frozen=True)
class TaskFilter:
    project_ids: Sequence[int] | None = None
    ids: Sequence[int] | None = None
    is_labeled: bool | None = None
    only_annotated: bool | None = None
    has_predictions: bool | None = None
    # Keyset paging: the tasks after this one in the list's order.
    after: int | None = None
    # A view's or a query's compiled filters, and the list's order (views.filters).
    where: ColumnElement[bool] | None = None
    order: Order = field(default_factory=Order)

    def apply(self, stmt: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
        if self.project_ids is not None:
            stmt = stmt.where(Task.project_id.in_(self.project_ids))
        if self.ids:
            stmt = stmt.where(Task.id.in_(self.ids))
        if self.is_labeled is not None:
            stmt = stmt.where(Task.is_labeled.is_(self.is_labeled))
        if self.only_annotated is not None:
            annotated = (Task.total_annotations + Task.cancelled_annotations) > 0
            stmt = stmt.where(annotated if self.only_annotated else ~annotated)
        if self.has_predictions is not None:
            stmt = stmt.where(Task.total_predictions > 0 if self.has_predictions else Task.total_predictions == 0)
        if self.where is not None:
            stmt = stmt.where(self.where)
        return stmt


def _keyset(session: Session, flt: TaskFilter) -> ColumnElement[bool] | None:
    """The condition for `after`: past that task in the list's order (its sort value is looked up by id)."""
    if flt.after is None:
        return None
    if flt.order.column is None:
        return flt.order.after(None, flt.after)
    row = session.execute(select(flt.order.column).where(Task.id == flt.after)).first()
    if row is None:
        raise BadRequest(
            f"after: task {flt.after} does not exist", validation_errors={"after": ["must be a task of this list"]}
        )
    return flt.order.after(row[0], flt.after)


def page(session: Session, flt: TaskFilter, *, offset: int, limit: int) -> list[Any]:
    stmt = flt.apply(select(*TASK_COLUMNS))
    if (after := _keyset(session, flt)) is not None:
        stmt = stmt.where(after)
    stmt = stmt.order_by(*flt.order.clauses()).offset(offset).limit(limit)
    return list(session.execute(stmt))


def totals(session: Session, flt: TaskFilter) -> tuple[int, int, int]:
    """Tasks, annotations and predictions of the filtered set, the whole list (`after` aside; one aggregate query)."""
    stmt = flt.apply(
        select(
            func.count(),
            func.coalesce(func.sum(Task.total_annotations), 0),
            func.coalesce(func.sum(Task.total_predictions), 0),
        )
    )
    count, annotations, predictions = session.execute(stmt).one()
    return int(count), int(annotations), int(predictions)


def list_key(session: Session, flt: TaskFilter) -> tuple[object, ...]:
    """What identifies a filtered list (not its page): its plain filters, and its compiled condition with values."""
    condition: tuple[object, ...] = ()
    if flt.where is not None:
        compiled = flt.where.compile(dialect=session.get_bind().dialect)
        condition = (str(compiled), repr(sorted(compiled.params.items())))
    # The newest task of the projects (an index lookup): a list that grew, or a database emptied
    # and filled again, is another list.
    newest = select(func.max(Task.id))
    if flt.project_ids is not None:
        newest = newest.where(Task.project_id.in_(flt.project_ids))
    return (
        session.scalar(newest),
        tuple(flt.project_ids) if flt.project_ids is not None else None,
        tuple(flt.ids) if flt.ids else None,
        flt.is_labeled,
        flt.only_annotated,
        flt.has_predictions,
        condition,
    )


def one(session: Session, task_id: int) -> Any | None:
    return session.execute(select(*TASK_COLUMNS).where(Task.id == task_id)).first()


def annotations_of(session: Session, task_ids: Sequence[int], only_user: int | None = None) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = defaultdict(list)
    if not task_ids:
        return out
    stmt = select(*ANNOTATION_COLUMNS).where(Annotation.task_id.in_(task_ids))
    if only_user is not None:
        stmt = stmt.where(Annotation.completed_by_id == only_user)
    for row in session.execute(stmt.order_by(Annotation.task_id, Annotation.id)):
        out[row.task_id].append(row)
    return out


def predictions_of(session: Session, task_ids: Sequence[int], first_version: str = "") -> dict[int, list[Any]]:
    """Predictions of the tasks, oldest first; those of `first_version` (the project's model version) first."""
    out: dict[int, list[Any]] = defaultdict(list)
    if not task_ids:
        return out
    stmt = select(*PREDICTION_COLUMNS).where(Prediction.task_id.in_(task_ids))
    order: list[SQLColumnExpression[Any]] = [Prediction.task_id, Prediction.id]
    if first_version:
        order.insert(1, (Prediction.model_version != first_version).asc())
    for row in session.execute(stmt.order_by(*order)):
        out[row.task_id].append(row)
    return out


def last_inner_id(session: Session, project_id: int) -> int:
    # inner_id grows with id inside a project, so the newest task holds the largest one.
    value = session.scalar(select(Task.inner_id).where(Task.project_id == project_id).order_by(Task.id.desc()).limit(1))
    return value or 0


def delete_tasks(session: Session, project_id: int, ids: Sequence[int] | None) -> list[int]:
    stmt = delete(Task).where(Task.project_id == project_id)
    if ids is not None:
        stmt = stmt.where(Task.id.in_(ids))
    return list(session.scalars(stmt.returning(Task.id).execution_options(synchronize_session=False)))
