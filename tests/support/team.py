"""A project team for role tests: one user (and HTTP client) per project role, plus an outsider."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from tests.support.apiserver import LiveServer

ROLES = ("viewer", "annotator", "reviewer", "manager")


@dataclass
class Team:
    project_id: int
    users: dict[str, int] = field(default_factory=dict)
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def __getitem__(self, role: str) -> httpx.Client:
        return self.clients[role]


def new_user(admin: httpx.Client, username: str, role: str = "annotator") -> tuple[int, str]:
    """Create a user (organisation role `role`) and return (id, token)."""
    r = admin.post("/api/users/", json={"username": username, "role": role})
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    r = admin.post(f"/api/users/{uid}/token/")
    assert r.status_code == 201, r.text
    return uid, r.json()["token"]


@contextmanager
def team(server: LiveServer, admin: httpx.Client, project_id: int) -> Iterator[Team]:
    """Members with each project role (their organisation role is plain `annotator`) and an outsider."""
    t = Team(project_id)
    try:
        for role in (*ROLES, "outsider"):
            uid, token = new_user(admin, f"{role}-{project_id}")
            if role != "outsider":
                r = admin.post(f"/api/projects/{project_id}/members/", json={"user": uid, "role": role})
                assert r.status_code == 201, r.text
            t.users[role] = uid
            t.clients[role] = server.client(token=token)
        yield t
    finally:
        for client in t.clients.values():
            client.close()
