"""The input limits' rules (api_server/common/inputs.py), and their 32-bit names against the models."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql

from api_server.common.errors import BadRequest
from api_server.common.inputs import INT32_FIELDS, MAX_DEPTH, parse_json
from api_server.db import models

# Each name of INT32_FIELDS and the column it ends up compared with or written to.
COLUMNS = {
    "project": models.Project.id,
    "project_id": models.Project.id,
    "task__project": models.Project.id,
    "user": models.User.id,
    "user_id": models.User.id,
    "completed_by": models.User.id,
    "updated_by": models.User.id,
    "token_id": models.ApiToken.id,
    "webhook_id": models.Webhook.id,
    "backend_id": models.MLBackend.id,
    "storage_id": models.ImportStorage.id,
    "maximum_annotations": models.Project.maximum_annotations,
    "overlap_cohort_percentage": models.Project.overlap_cohort_percentage,
    "task_lock_ttl": models.Project.task_lock_ttl,
    "min_annotations_to_start_training": models.Project.min_annotations_to_start_training,
}
BIGINT_IDS = {
    "task_id": models.Task.id,
    "annotation_id": models.Annotation.id,
    "prediction_id": models.Prediction.id,
    "draft_id": models.Draft.id,
    "delivery_id": models.WebhookDelivery.id,
}


def _pg_type(column) -> str:
    return column.type.compile(dialect=postgresql.dialect())


def test_32_bit_names_are_integer_columns_on_postgresql():
    assert set(COLUMNS) == INT32_FIELDS
    assert {name: _pg_type(c) for name, c in COLUMNS.items() if _pg_type(c) != "INTEGER"} == {}
    assert models.ExportStorage.id.type.compile(dialect=postgresql.dialect()) == "INTEGER"


def test_64_bit_ids_are_bigint_and_not_bounded_to_32_bits():
    assert {name: _pg_type(c) for name, c in BIGINT_IDS.items()} == dict.fromkeys(BIGINT_IDS, "BIGINT")
    assert not INT32_FIELDS & set(BIGINT_IDS)


def _nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def test_depth_limit_counts_the_body_as_level_one():
    assert parse_json(_nested(MAX_DEPTH)) is not None
    with pytest.raises(BadRequest, match="nested deeper than 100 levels"):
        parse_json(_nested(MAX_DEPTH + 1))


@pytest.mark.parametrize(
    "body,field",
    [
        (b'{"a": "x\\u0000"}', "a"),
        (b'{"a": {"b\\u0000": 1}}', "a.b\\u0000"),
        (b'{"a": [1, "\\ud800"]}', "a[1]"),
        (b'{"a": {"b": 1e999}}', "a.b"),
        (b'{"a": -Infinity}', "a"),
        (b'{"a": NaN}', "a"),
        (b'{"a": 9223372036854775808}', "a"),
        (b'{"a": -9223372036854775809}', "a"),
        (b'{"project": 2147483648}', "project"),
        (b'{"a": [1,', "body"),
    ],
)
def test_each_rule_names_the_field(body, field):
    with pytest.raises(BadRequest) as caught:
        parse_json(body)
    assert field in caught.value.validation_errors


def test_values_inside_the_limits_pass():
    body = (
        b'{"a": [9223372036854775807, -9223372036854775808, 1.7976931348623157e308], "data": {"project": 2147483648}}'
    )
    assert parse_json(body)["data"]["project"] == 2**31
