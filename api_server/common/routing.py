"""API paths answer both `/path` and `/path/`, with one route each.

Label Studio's paths end in a slash and its clients call them that way, while hand-written
clients often drop it. A redirect would lose POST bodies for many clients, so both forms are
served: `TrailingSlash` strips the slash from `/api/...` requests before routing, and
`DualSlashRouter` registers each route under its slash-less form. A second route per path
would double the table FastAPI scans on every request.

The declared (Label Studio) form is kept in `CANONICAL` for the OpenAPI schema and metrics.

Sync endpoints are registered through `one_thread_trip` (see there), and every route checks its
input against the limits of `common.inputs` (`GuardedRoute`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, MutableMapping
from inspect import iscoroutinefunction
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match

from api_server.common.inputs import GuardedRoute
from api_server.common.openapi import document_errors, truthful
from api_server.db.session import session_scope

API_PREFIX = "/api/"
# Slash-less route path -> the path as declared (what the schema and metrics show).
CANONICAL: dict[str, str] = {}


def canonical(path: str) -> str:
    return CANONICAL.get(path, path)


class DualSlashRouter(APIRouter):
    def __init__(self, **kwargs: Any) -> None:
        # Every API route checks its parameters and JSON body against the input limits first.
        kwargs.setdefault("route_class", GuardedRoute)
        super().__init__(**kwargs)

    def add_api_route(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        declared = self.prefix + path
        stripped = declared.rstrip("/")
        if declared.startswith(API_PREFIX) and stripped != declared:
            CANONICAL[stripped] = declared
            path = path.rstrip("/")
        super().add_api_route(path, one_thread_trip(endpoint), **kwargs)
        route = self.routes[-1]
        assert isinstance(route, APIRoute)  # the one just added
        document_errors(route)


def one_thread_trip(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A sync endpoint as an async one that goes to the thread pool once.

    FastAPI runs a sync endpoint in the pool, validates its response in the pool again, and the
    session dependency ends the request's reads (COMMIT, see `deps.get_session`) in a third trip.
    Each trip is a GIL hand-off between threads, and under load those cost more than the
    endpoint's own Python. Here the endpoint and the end of its transaction share one trip; the
    response (plain data by then) is validated on the event loop. FastAPI reads the signature
    and type hints of the wrapped function (`__wrapped__`), so nothing else changes.
    """
    if iscoroutinefunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)
    async def in_thread(**kwargs: Any) -> Any:
        return await run_in_threadpool(_call_and_end_transaction, endpoint, kwargs)

    return in_thread


T = TypeVar("T")


async def in_new_session(factory: sessionmaker[Session], function: Callable[..., T], /, **kwargs: Any) -> T:
    """One trip to the thread pool with a session of its own (`session_scope`): for async endpoints
    that need one only sometimes. A session dependency costs every request its setup and cleanup.
    """
    return await run_in_threadpool(_in_session_scope, factory, function, kwargs)


def _in_session_scope(factory: sessionmaker[Session], function: Callable[..., T], kwargs: dict[str, Any]) -> T:
    with session_scope(factory) as session:
        return function(session=session, **kwargs)


def _call_and_end_transaction(endpoint: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    sessions = [value for value in kwargs.values() if isinstance(value, Session)]
    try:
        result = endpoint(**kwargs)
    except BaseException:
        for session in sessions:
            session.rollback()
        raise
    for session in sessions:
        if session.in_transaction():
            session.commit()
    return result


class TrailingSlash:
    """ASGI middleware: `/api/x/` is routed as `/api/x` (see the module docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.endswith("/") and path.startswith(API_PREFIX) and path != API_PREFIX:
            scope = {**scope, "path": path.rstrip("/")}
        await self.app(scope, receive, send)


def allowed_methods(routers: list[APIRouter], scope: MutableMapping[str, Any]) -> list[str]:
    """Every method some route serves at the request's path (Starlette's 405 names only one route's)."""
    methods: set[str] = set()
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.matches(scope)[0] is not Match.NONE:
                methods |= route.methods or set()
    return sorted(methods)


def canonical_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every path in its declared form, and its errors as the server answers them."""
    schema["paths"] = {canonical(path): item for path, item in schema.get("paths", {}).items()}
    return truthful(schema)
