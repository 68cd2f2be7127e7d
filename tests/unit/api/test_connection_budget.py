"""How many PostgreSQL connections a server process may open, and the warning past the server's limit."""

from __future__ import annotations

import logging

from api_server.db.capacity import over_budget, warn_if_over_budget
from api_server.db.session import make_engine
from api_server.settings import Settings
from tests.support.services import POSTGRES_URL, require_port


def test_the_connection_budget_is_split_between_the_engine_and_the_loop():
    assert Settings(KUBELABEL_DB_CONNECTIONS=40).db_pools() == (30, 10)
    assert Settings(KUBELABEL_DB_CONNECTIONS=4).db_pools() == (2, 2)
    assert Settings(KUBELABEL_DB_CONNECTIONS=12, KUBELABEL_PG_FAST_LOOP=False).db_pools() == (12, 0)


def test_an_engine_opens_at_most_its_share():
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", 15)
    try:
        assert (engine.pool.size(), engine.pool._max_overflow) == (10, 5)  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_processes_that_could_open_more_connections_than_the_server_takes_are_named():
    assert over_budget(2, 40, 100, 3) is None
    warning = over_budget(3, 40, 100, 3)
    assert warning is not None
    assert "may open 120" in warning and "the 97 this server accepts" in warning
    assert "KUBELABEL_WORKERS" in warning and "KUBELABEL_DB_CONNECTIONS" in warning


def test_the_warning_reads_the_servers_own_limit(caplog):
    require_port("PostgreSQL", "127.0.0.1", 5432)
    engine = make_engine(POSTGRES_URL, 1)
    try:
        with caplog.at_level(logging.WARNING, logger="api_server.db.capacity"):
            warn_if_over_budget(engine, 1, 4)
            assert caplog.records == []
            warn_if_over_budget(engine, 1000, 1000)
        assert len(caplog.records) == 1 and "max_connections=" in caplog.records[0].getMessage()
    finally:
        engine.dispose()
