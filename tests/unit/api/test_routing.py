"""The route table: one route per path, both slash forms served, router order without effect."""

from __future__ import annotations

import itertools

from fastapi.routing import APIRoute

from api_server.common.routing import CANONICAL, canonical
from api_server.routers import ROUTERS


def _routes() -> list[tuple[int, APIRoute]]:
    return [(i, r) for i, router in enumerate(ROUTERS) for r in router.routes if isinstance(r, APIRoute)]


def _may_match_same_path(a: str, b: str) -> bool:
    """Two templates can match one concrete path: same length, and no segment where both are different literals."""
    sa, sb = a.split("/"), b.split("/")
    if len(sa) != len(sb):
        return False
    return all(x == y or x.startswith("{") or y.startswith("{") for x, y in zip(sa, sb, strict=True))


def test_no_two_routers_answer_the_same_path():
    clashes = [
        (a.path, b.path, sorted(a.methods & b.methods))
        for (i, a), (j, b) in itertools.combinations(_routes(), 2)
        if i != j and a.methods & b.methods and _may_match_same_path(a.path, b.path)
    ]
    assert clashes == []


def test_each_api_path_has_one_route_in_its_slashless_form():
    seen = [(r.path, m) for _, r in _routes() for m in r.methods]
    assert len(seen) == len(set(seen))
    api = [r.path for _, r in _routes() if r.path.startswith("/api/")]
    assert api and all(not p.endswith("/") for p in api)
    # Label Studio's declared form is kept for the schema and the metrics.
    assert canonical("/api/projects/{project_id}/next") == "/api/projects/{project_id}/next/"
    assert canonical("/api/projects") == "/api/projects/"
    assert all(v.rstrip("/") == k for k, v in CANONICAL.items())
