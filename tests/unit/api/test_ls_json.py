"""The field table's writers refuse to drift: a derived field without its rule, or a rule for a field the
table does not give the path, fails when the writer is built (at import), not in a response."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import orjson
import pytest

from api_server.annotations.schemas import AnnotationPublic, to_public, to_public_json
from api_server.common import ls_json
from api_server.db.models import Annotation
from api_server.exports import rawsql
from api_server.tasks.schemas import TaskPublic


def test_a_writer_needs_every_derived_rule_and_no_other():
    with pytest.raises(LookupError, match="no rule for the derived field 'created_username'"):
        ls_json.writer(ls_json.ANNOTATION, ls_json.API)
    with pytest.raises(LookupError, match="result_count"):
        ls_json.writer(ls_json.ANNOTATION, ls_json.WEBHOOK, derive={"result_count": len})


def test_a_writer_reads_the_columns_the_table_names():
    write = ls_json.writer(ls_json.TASK, ls_json.WEBHOOK, {"ts": lambda v: f"ts:{v}"})
    row = SimpleNamespace(**{f.column: f"{f.column}-value" for f in ls_json.TASK})
    out = write(row)
    assert list(out) == list(ls_json.keys_of(ls_json.TASK, ls_json.WEBHOOK))
    assert out["project"] == "project_id-value" and out["created_at"] == "ts:created_at-value"


def test_the_api_models_declare_the_table_keys():
    assert set(AnnotationPublic.model_fields) == set(ls_json.keys_of(ls_json.ANNOTATION, ls_json.API))
    assert set(TaskPublic.model_fields) == set(ls_json.keys_of((*ls_json.TASK, *ls_json.TASK_NESTED), ls_json.TASKS))


@pytest.mark.parametrize(
    "values",
    [
        # PostgreSQL's rows: aware timestamps; a whole-second one; a whole-number lead time
        {"created_at": datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC), "lead_time": 5},
        {"created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "lead_time": 2.5, "review_status": "accepted"},
        # SQLite's: naive UTC; another offset; nothing optional set
        {"created_at": datetime(2026, 1, 2, 3, 4, 5, 7), "draft_created_at": datetime(2026, 1, 1, 23, 0, 0, 1)},
        {"created_at": datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=timezone(timedelta(hours=2))), "lead_time": None},
    ],
)
def test_the_public_json_is_the_models_dump(values):
    """Event fan-outs write annotations with to_public_json; the API answers with the model: the same JSON."""
    row = Annotation(
        id=7, task_id=3, project_id=2, completed_by_id=5, result=[{"type": "choices"}], was_cancelled=False,
        ground_truth=True, updated_at=datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC), import_id=None,
        last_action=None, updated_by_id=None, parent_prediction_id=None, parent_annotation_id=None,
        bulk_created=False, **values,
    )  # fmt: skip
    dumped = to_public(row, "ann").model_dump(mode="json")
    built = to_public_json(row, "ann")
    assert built == dumped
    assert list(built) == list(dumped)  # the same text, key by key
    assert orjson.dumps(built) == orjson.dumps(dumped)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_export_sql_names_every_export_key(dialect):
    sql = rawsql.task_json_sql(rawsql.Dialect(dialect))
    for key in (
        *ls_json.keys_of(ls_json.ANNOTATION, ls_json.EXPORT),
        *ls_json.keys_of((*ls_json.TASK, *ls_json.TASK_NESTED), ls_json.EXPORT),
    ):
        assert f"'{key}'" in sql or f'"{key}"' in sql, key
    for key in set(ls_json.keys_of(ls_json.ANNOTATION, ls_json.API)) - set(
        ls_json.keys_of(ls_json.ANNOTATION, ls_json.EXPORT)
    ):
        assert f"'{key}'" not in sql and f'"{key}"' not in sql, key
