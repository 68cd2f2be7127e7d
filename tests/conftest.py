"""Shared fixtures: a real API server per database backend, and an HTTP client for it.

Each backend's server starts once per test session; every test gets it with empty tables
and the bootstrap admin, so tests never see each other's data.

    def test_something(api):          # runs on SQLite and on PostgreSQL
        r = api.post("/api/projects/", json={...})
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api_server.users.service import ensure_admin
from tests.support.apiserver import ADMIN_TOKEN, LiveServer, make_settings
from tests.support.databases import create_postgres_database, drop_postgres_database, sqlite_url, truncate_all
from tests.support.services import REDIS_URL, require_port

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
ROOT = Path(__file__).resolve().parent.parent

# The API server must never pick up a developer's own environment during tests.
for _var in ("DATABASE_URL", "REDIS_URL", "KUBELABEL_ADMIN_TOKEN", "KUBELABEL_PROJECT_FILE"):
    os.environ.pop(_var, None)


class ServerPool:
    """Starts servers on demand and stops (and drops the databases of) all of them at the end."""

    def __init__(self, tmp_factory: pytest.TempPathFactory) -> None:
        self.tmp_factory = tmp_factory
        self.shared: dict[str, LiveServer] = {}
        self.started: list[LiveServer] = []

    def new(self, backend: str, **settings: Any) -> LiveServer:
        data_dir = self.tmp_factory.mktemp(f"data-{backend}")
        if backend == "postgres":
            require_port("PostgreSQL", "127.0.0.1", 5432)
            url = create_postgres_database()
        else:
            url = sqlite_url(data_dir)
        server = LiveServer(
            backend=backend, database_url=url, data_dir=data_dir, settings=make_settings(url, data_dir, **settings)
        )
        self.started.append(server)
        return server.start()

    def shared_server(self, backend: str) -> LiveServer:
        if backend not in self.shared:
            self.shared[backend] = self.new(backend)
        return self.shared[backend]

    def close(self) -> None:
        for server in self.started:
            server.stop()
            if server.backend == "postgres":
                drop_postgres_database(server.database_url)


@pytest.fixture(scope="session")
def server_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    pool = ServerPool(tmp_path_factory)
    yield pool
    pool.close()


def reset(server: LiveServer) -> None:
    truncate_all(server.app.state.engine)
    # Sign-in counts live in the app: a test that locked 127.0.0.1 out must not lock the next file's out.
    server.app.state.login_limiter = None
    with server.session_factory() as session:
        ensure_admin(session, username="admin", token=ADMIN_TOKEN)
        session.commit()


@pytest.fixture(params=BACKENDS)
def live_server(request: pytest.FixtureRequest, server_pool: ServerPool) -> LiveServer:
    """The shared server of one backend, with empty tables."""
    server = server_pool.shared_server(request.param)
    reset(server)
    return server


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client authenticated as the admin, against a clean server (SQLite and PostgreSQL)."""
    with live_server.client() as client:
        yield client


TEXT_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="Positive"/><Choice value="Negative"/><Choice value="Neutral"/>
  </Choices>
</View>"""


@pytest.fixture
def text_project(api: httpx.Client) -> dict[str, Any]:
    """A project with a text classification config."""
    r = api.post("/api/projects/", json={"title": "Sentiment", "label_config": TEXT_CONFIG})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    import uuid

    import redis

    require_port("Redis", "127.0.0.1", 6379)
    prefix = f"kltest-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()
