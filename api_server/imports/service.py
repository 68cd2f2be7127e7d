"""The import transaction: lock the project, validate and write every task, all or nothing.

An `ImportJob` is fed items from any number of sources (the request body, uploaded files,
downloaded URLs); it validates each item, writes in batches, and commits only in
`finish()`. Any error before that leaves the project exactly as it was: the caller's
session is rolled back and nothing was committed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api_server import events
from api_server.common.errors import BadRequest
from api_server.db.models import FileUpload, Project, Task, User
from api_server.imports import idempotency
from api_server.imports.schemas import ImportResponse
from api_server.imports.validation import RowError, TaskIn, TaskValidator
from api_server.imports.writer import TaskWriter
from api_server.labelconfig.parser import LabelConfigError, parse
from api_server.metrics import IMPORTED_TASKS
from api_server.projects import service as projects
from api_server.tasks import counters
from api_server.users.roles import Role

BATCH = 20_000
# Errors reported per request before giving up (the whole import is rejected anyway).
MAX_ERRORS = 20
# Events of imports up to this many tasks carry the tasks themselves; bigger ones carry id ranges only.
EVENT_FULL_PAYLOAD_LIMIT = 1000
# PostgreSQL statistics are refreshed after an import of at least this many tasks that is also at
# least a quarter of its project (smaller additions leave the statistics good enough).
ANALYZE_AFTER = 10_000


class Pipeline:
    """Writes batches on a thread of its own, one at a time and in order.

    The database drivers release the GIL while the database works (COPY on PostgreSQL, the
    B-tree work of SQLite), so parsing and validating batch N+1 overlaps writing batch N. At
    most one batch waits in the queue. The session is only touched by this thread between the
    first submit and drain()/stop(); the import calls drain() before it uses the session itself.
    """

    def __init__(self, write: Callable[[list[TaskIn], int | None], Any]) -> None:
        self.write = write
        self.queue: queue.Queue[tuple[list[TaskIn], int | None] | None] = queue.Queue(maxsize=1)
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None

    def submit(self, batch: list[TaskIn], upload: int | None) -> None:
        self._raise()
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="import-writer", daemon=True)
            self.thread.start()
        self.queue.put((batch, upload))

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.write(*item)
                except BaseException as exc:  # noqa: BLE001 - handed to the importing thread
                    self.error = exc

    def drain(self) -> None:
        """Wait until every submitted batch is written; raise the writer's error if any."""
        self.stop()
        self._raise()

    def stop(self) -> None:
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread = None

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error


class ImportJob:
    def __init__(self, session: Session, user: User, project_id: int) -> None:
        self.started = time.perf_counter()
        self.session = session
        project = projects.get_project(session, user, project_id, Role.manager)
        self.project: Project = project
        self._lock_project()
        try:
            interface = parse(project.label_config)
            variables = interface.variables
        except LabelConfigError:
            variables = set()
        self.variables = variables
        self.validator = TaskValidator(variables)
        last_inner = session.scalar(
            select(Task.inner_id).where(Task.project_id == project.id).order_by(Task.id.desc()).limit(1)
        )
        self.writer = TaskWriter(
            session,
            project_id=project.id,
            user_id=user.id,
            overlap=project.maximum_annotations,
            next_inner_id=(last_inner or 0) + 1,
            now=datetime.now(UTC),
        )
        self.user = user
        self.buffer: list[TaskIn] = []
        self.buffer_upload: int | None = None
        self.errors: dict[str, list[str]] = {}
        self.file_upload_ids: list[int] = []
        self.found_formats: list[str] = []
        self.data_columns: set[str] = set()
        self.could_be_tasks_list = False
        self.small_tasks: list[dict[str, Any]] = []
        self.pipeline = Pipeline(self.writer.write)

    def _lock_project(self) -> None:
        # Serialise imports into one project (inner_id allocation); on SQLite this also takes
        # the database write lock now, so ids read below stay ours until commit.
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text("SELECT id FROM projects WHERE id = :id FOR UPDATE"), {"id": self.project.id})
        else:
            self.session.execute(text("UPDATE projects SET id = id WHERE id = :id"), {"id": self.project.id})

    @property
    def single_variable(self) -> str:
        if len(self.variables) != 1:
            names = ", ".join(f"${v}" for v in sorted(self.variables)) or "none"
            raise BadRequest(
                f"a TXT import (or a URL list) needs a label config with exactly one data field; this one has {names}",
                validation_errors={"format": [f"needs exactly one data field, the config has {names}"]},
            )
        return next(iter(self.variables))

    def add_file_upload(self, name: str, size: int, fmt: str) -> int:
        self._flush()
        self.pipeline.drain()  # the session is used here, so the pipeline thread must be idle
        upload = FileUpload(project_id=self.project.id, user_id=self.user.id, file=name[:500], size=size)
        self.session.add(upload)
        self.session.flush()
        self.file_upload_ids.append(upload.id)
        self.note_format(fmt)
        self.buffer_upload = upload.id
        return upload.id

    def note_format(self, fmt: str) -> None:
        ext = f".{fmt}"
        if ext not in self.found_formats:
            self.found_formats.append(ext)
        if fmt in {"csv", "tsv", "txt"}:
            self.could_be_tasks_list = True

    def add(self, items: Iterable[tuple[int, Any]], label: str = "", validator: TaskValidator | None = None) -> None:
        """Validate and buffer items (row number, item); label prefixes row names (a file name).

        `validator` replaces the config's own (media tasks need only their own media field).
        """
        validate = (validator or self.validator).task
        columns = self.data_columns
        for row, item in items:
            try:
                task = validate(item)
            except RowError as exc:
                self.errors.setdefault(f"{label}row {row}", []).append(str(exc))
                if len(self.errors) >= MAX_ERRORS:
                    break
                continue
            columns.update(task.data)
            self.buffer.append(task)
            if len(self.buffer) >= BATCH:
                self._check_errors()
                self._flush()
        self._check_errors()
        if len(self.buffer) >= BATCH:
            self._flush()

    def _check_errors(self) -> None:
        if self.errors:
            first = next(iter(self.errors.items()))
            more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            raise BadRequest(
                f"{first[0]}: {first[1][0]}{more}; nothing was imported", validation_errors=dict(self.errors)
            )

    def _flush(self) -> None:
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        if self.pipeline.running or self.writer.task_ids.count + len(batch) > EVENT_FULL_PAYLOAD_LIMIT:
            # Big imports: the pipeline thread writes this batch while the next one is validated.
            self.pipeline.submit(batch, self.buffer_upload)
            self.small_tasks.clear()
            return
        # Small imports are written right away: their events carry the tasks themselves.
        ids = self.writer.write(batch, self.buffer_upload)
        pid = self.project.id
        self.small_tasks.extend({"id": i, "data": t.data, "project": pid} for i, t in zip(ids, batch, strict=True))

    def close(self) -> None:
        """Stop the pipeline thread (after success or failure) before the session is used again."""
        self.pipeline.stop()

    def finish(
        self, return_task_ids: bool = False, before_commit: Callable[[ImportResponse], None] | None = None
    ) -> ImportResponse:
        """Write what is left and commit; `before_commit` joins the transaction (an idempotency key)."""
        self._check_errors()
        self._flush()
        self.pipeline.drain()
        writer = self.writer
        count = writer.task_ids.count
        if count == 0 and not self.file_upload_ids:
            raise BadRequest("no tasks found in the request", validation_errors={"body": ["no tasks to import"]})
        pid = self.project.id
        if writer.annotated_task_ids:
            counters.refresh(self.session, writer.annotated_task_ids)
        if count:
            objects: dict[str, Any] = {"task_count": count, "task_id_ranges": writer.task_ids.runs}
            if count <= EVENT_FULL_PAYLOAD_LIMIT:
                objects["tasks"] = self.small_tasks
            events.publish(self.session, pid, "TASKS_CREATED", **objects)
        if writer.annotation_ids.count:
            events.publish(
                self.session,
                pid,
                "ANNOTATIONS_CREATED",
                annotation_count=writer.annotation_ids.count,
                annotation_id_ranges=writer.annotation_ids.runs,
                task_id_ranges=writer.task_ids.runs,
            )
        response = ImportResponse(
            task_count=count,
            annotation_count=writer.annotation_ids.count,
            prediction_count=writer.prediction_count,
            predictions_count=writer.prediction_count,
            duration=round(time.perf_counter() - self.started, 4),
            file_upload_ids=self.file_upload_ids,
            could_be_tasks_list=self.could_be_tasks_list,
            found_formats=self.found_formats,
            data_columns=sorted(self.data_columns),
            task_ids=writer.task_ids.ids() if return_task_ids else None,
        )
        if before_commit is not None:
            before_commit(response)
        self.session.commit()
        IMPORTED_TASKS.labels(str(pid)).inc(count)
        project_size = writer.next_inner_id - 1
        stale = count >= ANALYZE_AFTER and count * 4 >= project_size
        if stale and self.session.get_bind().dialect.name == "postgresql":
            # Fresh statistics after a bulk load, so keyset pages use the (project_id, id) index
            # instead of a bitmap scan of the whole project.
            tables = ["tasks"] + (["annotations"] if writer.annotation_ids.count else [])
            tables += ["predictions"] if writer.prediction_count else []
            self.session.execute(text(f"ANALYZE {', '.join(tables)}"))
            self.session.commit()
        return response


def open_import(session: Session, user: User, project_id: int, key: str | None) -> ImportJob:
    """The import's transaction, the project locked; KeyUsed when the key's import is already done,
    its transaction rolled back first, so the project lock goes before the rest of the body is read."""
    job = ImportJob(session, user, project_id)
    if key is not None:
        try:
            idempotency.check_unused(session, user.id, project_id, "import", key)
        except idempotency.KeyUsed:
            job.close()
            session.rollback()
            raise
    return job
