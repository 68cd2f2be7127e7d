"""Helpers for labeling-workflow tests: projects with tasks, users with a project role and a token."""

from __future__ import annotations

from typing import Any

import httpx

from api_server.db.models import ProjectMember
from tests.support.apiserver import LiveServer

CHOICES = ["Positive", "Negative", "Neutral"]


def choice(value: str = "Positive", from_name: str = "sentiment", to_name: str = "text") -> list[dict[str, Any]]:
    """A valid result for the TEXT_CONFIG project (tests/conftest.py)."""
    return [{"from_name": from_name, "to_name": to_name, "type": "choices", "value": {"choices": [value]}}]


def project_with_tasks(
    api: httpx.Client, config: str, n: int, *, overlap: int = 1, **fields: Any
) -> tuple[dict[str, Any], list[int]]:
    """A project whose `n` tasks (data {"text": "task i"}) want `overlap` annotations each."""
    r = api.post(
        "/api/projects/", json={"title": "workflow", "label_config": config, "maximum_annotations": overlap, **fields}
    )
    assert r.status_code == 201, r.text
    project = r.json()
    ids = import_tasks(api, project["id"], [{"text": f"task {i}"} for i in range(n)])
    return project, ids


def import_tasks(api: httpx.Client, project_id: int, data: list[dict[str, Any]]) -> list[int]:
    if not data:
        return []
    r = api.post(f"/api/projects/{project_id}/import?return_task_ids=true", json=data)
    assert r.status_code == 201, r.text
    return sorted(r.json()["task_ids"])


def member(api: httpx.Client, server: LiveServer, project_id: int, role: str, username: str) -> httpx.Client:
    """A new user with `role` in the project; returns an HTTP client authenticated as them (close it)."""
    r = api.post("/api/users/", json={"username": username})
    assert r.status_code == 201, r.text
    user_id = r.json()["id"]
    r = api.post(f"/api/users/{user_id}/token/")
    assert r.status_code == 201, r.text
    with server.session_factory() as session:
        session.add(ProjectMember(project_id=project_id, user_id=user_id, role=role))
        session.commit()
    client = server.client(token=r.json()["token"])
    client.user_id = user_id  # type: ignore[attr-defined]
    return client
