"""Routers are HTTP only: parse, call a service, shape the response. None commits, rolls back or queries
(that is the services' and repositories' work), so each domain's rules and transactions stay in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3] / "api_server"
ROUTERS = sorted(ROOT.glob("*/router.py"))
# What a session (or connection) does that belongs to a service or a repository.
DATABASE_CALLS = {"commit", "rollback", "execute", "scalar", "scalars", "get", "add", "delete", "flush", "merge"}
RECEIVERS = {"session", "db", "conn", "connection"}


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "sqlalchemy":
            found.append(f"line {node.lineno}: imports {', '.join(a.name for a in node.names)} from sqlalchemy")
        if isinstance(node, ast.Attribute) and node.attr in DATABASE_CALLS:
            receiver = node.value
            if isinstance(receiver, ast.Name) and receiver.id in RECEIVERS:
                found.append(f"line {node.lineno}: {receiver.id}.{node.attr}")
    return found


def test_every_domain_router_is_checked() -> None:
    assert {p.parent.name for p in ROUTERS} >= {"projects", "tasks", "users", "annotations", "storages", "workflow"}


@pytest.mark.parametrize("path", ROUTERS, ids=lambda p: p.parent.name)
def test_router_neither_commits_nor_queries(path: Path) -> None:
    assert _offences(path) == []
