"""Write validated tasks (with inline annotations and predictions) in batches.

Counters (total_annotations, cancelled_annotations, total_predictions, prediction_score,
is_labeled) are computed while the rows are built, so an import never runs a second
statement per task to refresh them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api_server.db.models import Annotation, Prediction, Task, User
from api_server.imports.bulk import NULL, BulkTable, copy_escape, copy_text, skip_fk_checks, sqlite_timestamp
from api_server.imports.validation import TaskIn

TASK_COLUMNS = (
    "id",
    "project_id",
    "inner_id",
    "data",
    "meta",
    "state",
    "is_labeled",
    "overlap",
    "total_annotations",
    "cancelled_annotations",
    "total_predictions",
    "prediction_score",
    "file_upload_id",
    "created_at",
    "updated_at",
)
ANNOTATION_COLUMNS = (
    "id",
    "task_id",
    "project_id",
    "completed_by_id",
    "result",
    "was_cancelled",
    "ground_truth",
    "lead_time",
    "bulk_created",
    "created_at",
    "updated_at",
)
PREDICTION_COLUMNS = ("id", "task_id", "project_id", "result", "score", "model_version", "created_at", "updated_at")


class IdRanges:
    """Ids as inclusive [first, last] runs: a million consecutive ids cost one pair."""

    def __init__(self) -> None:
        self.runs: list[list[int]] = []
        self.count = 0

    def add(self, ids: list[int]) -> None:
        runs = self.runs
        for i in ids:
            if runs and runs[-1][1] + 1 == i:
                runs[-1][1] = i
            else:
                runs.append([i, i])
        self.count += len(ids)

    def ids(self) -> list[int]:
        return [i for first, last in self.runs for i in range(first, last + 1)]


class TaskWriter:
    def __init__(
        self, session: Session, *, project_id: int, user_id: int, overlap: int, next_inner_id: int, now: datetime
    ) -> None:
        self.session = session
        self.project_id = project_id
        self.user_id = user_id
        self.overlap = overlap
        self.next_inner_id = next_inner_id
        self.now = now
        self.pg = session.get_bind().dialect.name == "postgresql"
        # Every foreign key of the rows written here is vouched for: the project is locked by the
        # import, tasks and uploads were just written, authors are checked against existing users.
        self.trusted = self.pg and skip_fk_checks(session)
        self.tasks = BulkTable(session, Task.__table__, TASK_COLUMNS, now)
        self._annotations: BulkTable | None = None
        self._predictions: BulkTable | None = None
        self._users: set[int] | None = None
        self.task_ids = IdRanges()
        # Tasks that received annotations: their counters are recomputed by tasks.counters at the end,
        # so review rules and any other counting rule stay in one place.
        self.annotated_task_ids: list[int] = []
        self.annotation_ids = IdRanges()
        self.prediction_count = 0
        self.now_pg = now.isoformat().encode()
        self.now_sqlite = sqlite_timestamp(now)

    # -- helpers -------------------------------------------------------------------------

    @property
    def annotations(self) -> BulkTable:
        if self._annotations is None:
            self._annotations = BulkTable(self.session, Annotation.__table__, ANNOTATION_COLUMNS, self.now)
        return self._annotations

    @property
    def predictions(self) -> BulkTable:
        if self._predictions is None:
            self._predictions = BulkTable(self.session, Prediction.__table__, PREDICTION_COLUMNS, self.now)
        return self._predictions

    def _author(self, completed_by: int | None) -> int:
        if completed_by is None:
            return self.user_id
        if self._users is None:
            self._users = set(self.session.scalars(select(User.id)))
        return completed_by if completed_by in self._users else self.user_id

    # -- writing -------------------------------------------------------------------------

    def write(self, batch: list[TaskIn], file_upload_id: int | None) -> list[int]:
        """Insert a batch of tasks and everything they carry; returns the new task ids."""
        if not batch:
            return []
        ids = self.tasks.allocate_ids(len(batch))
        inner = self.next_inner_id
        self.next_inner_id += len(batch)
        task_rows: list[Any] = []
        plain_rows: list[Any] = []  # tasks without annotations/predictions: constant columns inlined
        ann_rows: list[tuple[int, Any]] = []  # (task id, AnnotationIn)
        pred_rows: list[tuple[int, Any]] = []
        pg = self.pg
        pid = self.project_id
        overlap = self.overlap
        fu_pg = NULL if file_upload_id is None else str(file_upload_id).encode()
        now_pg = self.now_pg
        now_sq = self.now_sqlite
        plain_tail = b"new\tf\t%d\t0\t0\t0\t\\N\t%b\t%b\t%b" % (overlap, fu_pg, now_pg, now_pg)
        empty_meta = b"{}"
        for task_id, task in zip(ids, batch, strict=True):
            if not task.annotations and not task.predictions:
                if pg:
                    meta = task.meta_json
                    plain_rows.append(
                        b"%d\t%d\t%d\t%b\t%b\t%b"
                        % (
                            task_id,
                            pid,
                            inner,
                            copy_escape(task.data_json.encode()),
                            empty_meta if meta == "{}" else copy_escape(meta.encode()),
                            plain_tail,
                        )
                    )
                else:
                    plain_rows.append((task_id, task.data_json, task.meta_json))
                inner += 1
                continue
            total = cancelled = n_pred = 0
            score = None
            if task.annotations:
                for ann in task.annotations:
                    if ann.was_cancelled:
                        cancelled += 1
                    else:
                        total += 1
                    ann_rows.append((task_id, ann))
            if task.predictions:
                n_pred = len(task.predictions)
                score = task.predictions[-1].score
                for pred in task.predictions:
                    pred_rows.append((task_id, pred))
            labeled = total > 0 and total >= overlap
            if pg:
                task_rows.append(
                    b"%d\t%d\t%d\t%b\t%b\tnew\t%b\t%d\t%d\t%d\t%d\t%b\t%b\t%b\t%b"
                    % (
                        task_id,
                        pid,
                        inner,
                        copy_escape(task.data_json.encode()),
                        copy_escape(task.meta_json.encode()),
                        b"t" if labeled else b"f",
                        overlap,
                        total,
                        cancelled,
                        n_pred,
                        NULL if score is None else repr(score).encode(),
                        fu_pg,
                        now_pg,
                        now_pg,
                    )
                )
            else:
                task_rows.append(
                    (
                        task_id,
                        pid,
                        inner,
                        task.data_json,
                        task.meta_json,
                        "new",
                        int(labeled),
                        overlap,
                        total,
                        cancelled,
                        n_pred,
                        score,
                        file_upload_id,
                        now_sq,
                        now_sq,
                    )
                )
            inner += 1
        if pg:
            self.tasks.copy_lines(plain_rows, trusted=self.trusted)
        elif plain_rows:
            self._sqlite_plain(plain_rows, ids[0], self.next_inner_id - len(batch), file_upload_id)
        if pg:
            self.tasks.copy_lines(task_rows, trusted=self.trusted)
        else:
            self.tasks.insert_sqlite(task_rows)
        self.task_ids.add(ids)
        if ann_rows:
            self._write_annotations(ann_rows)
            self.annotated_task_ids.extend(sorted({task_id for task_id, _ in ann_rows}))
        if pred_rows:
            self.write_predictions(pred_rows)
        return ids

    def _sqlite_plain(self, rows: list[Any], first_id: int, first_inner: int, file_upload_id: int | None) -> None:
        """Tasks without results: only (id, data, meta) are bound, every other column is a literal.

        SQLite ids of one batch are consecutive, so inner_id is the id plus a constant.
        """
        table = self.tasks
        literals = [
            "?1",
            str(int(self.project_id)),
            f"?1 + {int(first_inner - first_id)}",
            "?2",
            "?3",
            "'new'",
            "0",
            str(int(self.overlap)),
            "0",
            "0",
            "0",
            "NULL",
            "NULL" if file_upload_id is None else str(int(file_upload_id)),
            f"'{self.now_sqlite}'",
            f"'{self.now_sqlite}'",
        ]
        literals += [f"?{4 + i}" for i in range(len(table.rest_values))]
        table.insert_sqlite_values(
            ", ".join(literals), [r + table.rest_values for r in rows] if table.rest_values else rows
        )

    def _write_annotations(self, rows: list[tuple[int, Any]]) -> None:
        table = self.annotations
        ids = table.allocate_ids(len(rows))
        pid = self.project_id
        now: bytes | str  # COPY text on PostgreSQL, a SQL literal on SQLite
        if self.pg:
            now = self.now_pg
            table.copy_lines(
                [
                    b"\t".join(
                        (
                            b"%d" % ann_id,
                            b"%d" % task_id,
                            b"%d" % pid,
                            b"%d" % self._author(a.completed_by),
                            copy_escape(a.result.encode()),
                            b"t" if a.was_cancelled else b"f",
                            b"t" if a.ground_truth else b"f",
                            copy_text(a.lead_time),
                            b"t",
                            now,
                            now,
                        )
                    )
                    for ann_id, (task_id, a) in zip(ids, rows, strict=True)
                ]
            )
        else:
            now = self.now_sqlite
            table.insert_sqlite(
                [
                    (
                        ann_id,
                        task_id,
                        pid,
                        self._author(a.completed_by),
                        a.result,
                        int(a.was_cancelled),
                        int(a.ground_truth),
                        a.lead_time,
                        1,
                        now,
                        now,
                    )
                    for ann_id, (task_id, a) in zip(ids, rows, strict=True)
                ]
            )
        self.annotation_ids.add(ids)

    def write_predictions(self, rows: list[tuple[int, Any]]) -> None:
        table = self.predictions
        ids = table.allocate_ids(len(rows))
        pid = self.project_id
        now: bytes | str  # COPY text on PostgreSQL, a SQL literal on SQLite
        if self.pg:
            now = self.now_pg
            table.copy_lines(
                [
                    b"\t".join(
                        (
                            b"%d" % pred_id,
                            b"%d" % task_id,
                            b"%d" % pid,
                            copy_escape(p.result.encode()),
                            copy_text(p.score),
                            copy_text(p.model_version),
                            now,
                            now,
                        )
                    )
                    for pred_id, (task_id, p) in zip(ids, rows, strict=True)
                ]
            )
        else:
            now = self.now_sqlite
            table.insert_sqlite(
                [
                    (pred_id, task_id, pid, p.result, p.score, p.model_version, now, now)
                    for pred_id, (task_id, p) in zip(ids, rows, strict=True)
                ]
            )
        self.prediction_count += len(rows)
