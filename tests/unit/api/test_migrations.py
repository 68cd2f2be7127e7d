"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from api_server.db import models  # registers the tables
from api_server.db.base import Base
from api_server.db.migrate import upgrade
from api_server.db.session import make_engine
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.services import require_port


def _diff(url: str) -> list[object]:
    upgrade(url)
    upgrade(url)  # a second run is a no-op, never an error
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_sqlite_schema_matches_models(tmp_path):
    assert _diff(f"sqlite:///{tmp_path / 'm.db'}") == []


@pytest.mark.postgres
def test_postgres_schema_matches_models():
    require_port("PostgreSQL", "127.0.0.1", 5432)
    url = create_postgres_database("kl_migrate")
    try:
        assert _diff(url) == []
    finally:
        drop_postgres_database(url)


def _storage_options(url: str) -> dict[str, list[str]]:
    """Each table's storage parameters (fillfactor, ...), which the comparison above does not see."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT relname, reloptions FROM pg_class WHERE relkind = 'r' AND reloptions IS NOT NULL"
                    " AND relnamespace = 'public'::regnamespace"
                )
            )
            return {name: sorted(options) for name, options in rows}
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_tables_have_the_models_storage_parameters():
    """Deliveries leave room for their claims' in-place updates, in the tests' schema as after the migrations."""
    require_port("PostgreSQL", "127.0.0.1", 5432)
    migrated, created = create_postgres_database("kl_migrate"), create_postgres_database("kl_models")
    try:
        upgrade(migrated)
        engine = make_engine(created)
        Base.metadata.create_all(engine)
        engine.dispose()
        expected = {"webhook_deliveries": [f"fillfactor={models.DELIVERY_FILLFACTOR}"]}
        assert _storage_options(migrated) == _storage_options(created) == expected
    finally:
        drop_postgres_database(migrated)
        drop_postgres_database(created)
