"""Export rules: who may export, which formats fit, and the streamed body of one export."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from api_server.common.errors import BadRequest
from api_server.db.models import User
from api_server.exports import encoders, jsontext, rawsql, source, vision
from api_server.exports.formats import INFO, ExportType, available
from api_server.labelconfig.parser import LabelConfigError, LabelInterface, parse
from api_server.projects import service as projects
from api_server.storages.presign import PREFIXES, resolve_task_data
from api_server.tasks.serialize import data_text
from api_server.users.roles import Role
from api_server.views import service as views


@dataclass(frozen=True)
class ExportPlan:
    fmt: ExportType
    selection: source.Selection
    interface: LabelInterface | None
    filename: str
    media_type: str


def _interface(config: str) -> LabelInterface | None:
    try:
        return parse(config)
    except LabelConfigError:
        return None


def formats_for(session: Session, user: User, project_id: int) -> LabelInterface | None:
    project = projects.get_project(session, user, project_id, Role.manager)
    return _interface(project.label_config)


def plan(
    session: Session,
    user: User,
    project_id: int,
    export_type: str,
    annotated_only: bool,
    ids: list[int] | None,
    view_id: int | None = None,
    resolve: bool = False,
) -> ExportPlan:
    project = projects.get_project(session, user, project_id, Role.manager)
    # A view narrows the export to the tasks its filters and selected items admit (its ordering is not used).
    where = (
        views.prepared(session, user, view_id=view_id, query=None, project_id=project.id).where
        if view_id is not None
        else None
    )
    try:
        fmt = ExportType(export_type.upper())
    except ValueError:
        names = ", ".join(f.value for f in ExportType)
        raise BadRequest(
            f"exportType: unknown format {export_type!r}; use one of {names}",
            validation_errors={"exportType": [f"unknown format; use one of {names}"]},
        ) from None
    interface = _interface(project.label_config)
    fits = available(interface)
    if fmt not in fits:
        names = ", ".join(f.value for f in ExportType if f in fits)
        raise BadRequest(
            f"exportType: {fmt.value} does not fit this project's label config; it allows {names}",
            validation_errors={"exportType": [f"not available for this label config; use one of {names}"]},
        )
    info = INFO[fmt]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H-%M-%S")
    return ExportPlan(
        fmt=fmt,
        selection=source.Selection(
            project_id=project.id, annotated_only=annotated_only, ids=ids, where=where, resolve=resolve
        ),
        interface=interface,
        filename=f"project-{project.id}-at-{stamp}.{info.extension}",
        media_type=info.media_type,
    )


def _resolved_task(text: str) -> str:
    """One exported task's JSON with its data's bucket URIs resolved (parsed only when it holds one)."""
    if not any(prefix in text for prefix in PREFIXES):
        return text
    try:
        task = jsontext.loads(text)
    except ValueError:
        return text
    task["data"] = resolve_task_data(task["data"], task["id"]) if isinstance(task.get("data"), dict) else task["data"]
    return jsontext.dumps(task).decode()


def stream(factory: sessionmaker[Session], export: ExportPlan) -> Iterator[bytes]:
    """The export's bytes, batch by batch, read in one snapshot (repeatable read on PostgreSQL)."""
    session = factory()
    try:
        if session.get_bind().dialect.name == "postgresql":
            connection = session.connection(
                execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
            )
            # Every export query walks an index in id order; never let stale statistics turn a
            # keyset page into a bitmap scan (and sort) of the whole project.
            connection.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        yield from _body(session, export)
    finally:
        session.rollback()
        session.close()


def _body(session: Session, export: ExportPlan) -> Iterator[bytes]:
    fmt, selection, interface = export.fmt, export.selection, export.interface
    if fmt in (ExportType.JSON, ExportType.JSONL):
        pages = rawsql.task_json_pages(session, selection)
        if selection.resolve:
            pages = ([_resolved_task(t) for t in page] for page in pages)
        yield from encoders.json_texts(pages, lines=fmt is ExportType.JSONL)
        return
    batches = rawsql.batches(session, selection)
    if selection.resolve:
        batches = (
            source.Batch([(t[0], data_text(t[1], t[0], True)) for t in b.tasks], b.annotations, b.predictions)
            for b in batches
        )
    if fmt is ExportType.JSON_MIN:
        yield from encoders.json_min(batches, interface)
    elif fmt in (ExportType.CSV, ExportType.TSV):
        keys = source.data_keys(session, selection)
        yield from encoders.table(batches, interface, keys, "\t" if fmt is ExportType.TSV else ",")
    else:
        assert interface is not None
        if fmt is ExportType.CONLL2003:
            yield from encoders.conll(batches, interface)
        elif fmt is ExportType.COCO:
            yield from vision.coco(batches, interface)
        else:
            yield from vision.yolo(batches, interface)
