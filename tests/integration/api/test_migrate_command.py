"""`kubelabel migrate` (the API pods' init container) takes the same database settings as `serve`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.services import require_port

KUBELABEL = str(Path(sys.executable).parent / "kubelabel")


def _migrate(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KUBELABEL_", "DATABASE_URL"))}
    return subprocess.run(
        [KUBELABEL, "migrate"], env={**base, **env}, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_without_database_url_it_migrates_the_sqlite_file_of_the_data_dir(tmp_path: Path) -> None:
    result = _migrate({"KUBELABEL_DATA_DIR": str(tmp_path / "data")}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "kubelabel.db").stat().st_size > 0


@pytest.mark.postgres
def test_a_plain_postgresql_dsn_as_kept_in_secrets(tmp_path: Path) -> None:
    """The operator's pods get the DSN from the project's Secret: postgresql://..., no driver named."""
    require_port("PostgreSQL", "127.0.0.1", 5432)
    url = create_postgres_database()
    try:
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        result = _migrate({"DATABASE_URL": dsn}, tmp_path)
        assert result.returncode == 0, result.stderr
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
    finally:
        drop_postgres_database(url)
