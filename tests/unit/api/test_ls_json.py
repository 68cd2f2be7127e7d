"""The field table's writers refuse to drift: a derived field without its rule, or a rule for a field the
table does not give the path, fails when the writer is built (at import), not in a response."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from api_server.annotations.schemas import AnnotationPublic
from api_server.common import ls_json
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
