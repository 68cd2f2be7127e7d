"""JSON columns keep every value exactly, on both databases, through the engines' orjson codec."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, Table, insert, select

from api_server.db.session import json_loads, make_engine
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.services import require_port

VALUES = [
    {"big": 2**70, "negative": -(2**65), "u64": 2**64 - 1, "small": 7, "float": 0.1, "exp": 1e300},
    {"text": 'naïve ✓ \u0000 "quoted"', "nested": [{"a": [1, [2, [3]]]}, None, True, False], "empty": {}},
    [1, 2, 3],
    "a string",
]


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'j.db'}"
        return
    require_port("PostgreSQL", "127.0.0.1", 5432)
    created = create_postgres_database()
    yield created
    drop_postgres_database(created)


def test_values_come_back_as_written(url: str) -> None:
    engine = make_engine(url)
    table = Table("j", MetaData(), Column("id", Integer, primary_key=True), Column("v", JSON))
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), [{"id": i, "v": v} for i, v in enumerate(VALUES)])
    with engine.connect() as conn:
        stored = [row.v for row in conn.execute(select(table).order_by(table.c.id))]
    engine.dispose()
    assert stored == VALUES
    assert type(stored[0]["big"]) is int


def test_what_only_the_standard_library_reads() -> None:
    assert json_loads('{"x": NaN}')["x"] != json_loads('{"x": NaN}')["x"]  # NaN, written by json.dumps
    assert json_loads(b'{"x": 36893488147419103232}') == {"x": 2**65}
