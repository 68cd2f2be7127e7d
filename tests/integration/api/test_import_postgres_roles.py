"""PostgreSQL imports as a role that may not skip foreign-key triggers: same results, checks kept."""

from __future__ import annotations

import uuid

import orjson
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import TEXT_CONFIG
from tests.support.services import POSTGRES_URL, require_port

pytestmark = pytest.mark.postgres


def test_import_as_unprivileged_role(server_pool):
    require_port("PostgreSQL", "127.0.0.1", 5432)
    admin_dsn = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    suffix = uuid.uuid4().hex[:10]
    role, database = f"kl_owner_{suffix}", f"kl_role_{suffix}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER')
        conn.execute(f'CREATE DATABASE "{database}" OWNER "{role}"')
    url = make_url(POSTGRES_URL).set(username=role, database=database).render_as_string(hide_password=False)
    server = None
    try:
        # The role really lacks the privilege the fast path needs.
        with (
            psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute("SET session_replication_role = replica")
        server = server_pool.new("postgres", DATABASE_URL=url)
        with server.client() as client:
            pid = client.post("/api/projects/", json={"title": "p", "label_config": TEXT_CONFIG}).json()["id"]
            tasks = [{"text": f"t{i}"} for i in range(25_000)]
            tasks[24_000] = {"other": 1}
            r = client.post(f"/api/projects/{pid}/import", json=tasks)
            assert r.status_code == 400 and "row 24001" in r.json()["validation_errors"]
            tasks[24_000] = {"text": "fixed"}
            r = client.post(
                f"/api/projects/{pid}/import", content=orjson.dumps(tasks), headers={"Content-Type": "application/json"}
            )
            assert r.status_code == 201 and r.json()["task_count"] == 25_000, r.text
            assert client.get(f"/api/projects/{pid}/").json()["task_number"] == 25_000
            exported = client.get(f"/api/projects/{pid}/export", params={"download_all_tasks": "true"}).json()
            assert len(exported) == 25_000 and exported[24_000]["data"] == {"text": "fixed"}
    finally:
        if server is not None:
            server.stop()
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')
