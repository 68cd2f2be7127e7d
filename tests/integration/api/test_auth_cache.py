"""Authenticated users are cached briefly per process; user and token changes clear the cache."""

from __future__ import annotations

import pytest

from api_server.users.auth_cache import AUTH_CACHE


@pytest.fixture
def cached_server(server_pool):
    server = server_pool.new("sqlite", KUBELABEL_AUTH_CACHE_SECONDS=60)
    yield server
    AUTH_CACHE.clear()


def test_revoked_and_deactivated_users_lose_access_at_once(cached_server):
    with cached_server.client() as admin:
        alice = admin.post("/api/users/", json={"username": "alice", "role": "manager"}).json()
        token = admin.post(f"/api/users/{alice['id']}/token/").json()["token"]
        with cached_server.client(token=token) as client:
            assert client.get("/api/current-user/whoami").json()["username"] == "alice"
            assert client.get("/api/current-user/whoami").status_code == 200  # served from the cache
            assert admin.patch(f"/api/users/{alice['id']}/", json={"is_active": False}).status_code == 200
            assert client.get("/api/current-user/whoami").status_code == 401


def test_cache_entries_expire():
    from api_server.db.models import User

    user = User(id=1, username="u", role="admin")
    AUTH_CACHE.put("digest", user, ttl=60)
    assert AUTH_CACHE.get("digest", ttl=60) is user
    assert AUTH_CACHE.get("digest", ttl=0) is None
    AUTH_CACHE.put("old", user, ttl=-1)
    assert AUTH_CACHE.get("old", ttl=60) is None
    AUTH_CACHE.clear()
    assert AUTH_CACHE.get("digest", ttl=60) is None
