"""The FastAPI application factory."""

from __future__ import annotations

import logging
import re

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api_server import __version__
from api_server.common.errors import ApiError, BadRequest, Conflict, field_error
from api_server.common.routing import TrailingSlash, allowed_methods, canonical_openapi
from api_server.db.session import make_engine, make_session_factory
from api_server.jobs.lifecycle import attach_job_runner
from api_server.limits import BodySizeLimit
from api_server.metrics import ProjectGauges, RequestTimer
from api_server.routers import ROUTERS
from api_server.settings import Settings
from api_server.wiring import wire
from api_server.workflow import pg_loop

log = logging.getLogger(__name__)


def _field_path(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


# The handlers are coroutines: they only build a response, and a plain function would wait for a
# place in the request threads that every blocking call shares (under load, 4xx answers queued there).
async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors: dict[str, list[str]] = {}
    for err in exc.errors():
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        errors.setdefault(_field_path(tuple(err.get("loc", ()))), []).append(msg)
    detail = "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in errors.items())
    return JSONResponse({"status_code": 400, "detail": detail, "validation_errors": errors}, status_code=400)


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status_code)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Routing's own errors (unknown path, method not allowed) in the project's error body."""
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(ROUTERS, request.scope))
    body = {"status_code": exc.status_code, "detail": str(exc.detail)}
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


async def _database_error(request: Request, exc: IntegrityError | DataError) -> JSONResponse:
    """The last line behind the input checks: a value or constraint the database refused is the
    client's 4xx, naming the column where the database says which."""
    text = str(exc.orig)
    diag = getattr(exc.orig, "diag", None)
    column = getattr(diag, "column_name", None)
    if column is None and "NOT NULL constraint failed: " in text:  # SQLite: "... failed: table.column"
        column = text.rsplit(".", 1)[-1].strip()
    key = re.match(r"Key \((\w+)\)", getattr(diag, "message_detail", None) or "")  # PostgreSQL's FK/unique detail
    if isinstance(exc, DataError):
        error: ApiError = BadRequest(f"a value does not fit its database column: {text.splitlines()[0]}")
    elif column is not None:
        error = field_error(column, "must not be null")
    elif "UNIQUE" in text or "unique" in text:
        error = Conflict("the change conflicts with an existing row (a unique constraint)")
    elif key is not None:
        error = field_error(key.group(1).removesuffix("_id"), "refers to a row that does not exist")
    else:
        error = BadRequest("the change refers to a row that does not exist or breaks a database constraint")
    log.info("%s %s: %s", request.method, request.url.path, text.splitlines()[0] if text else exc)
    return await _api_error(request, error)


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="kubelabel",
        version=__version__,
        description="Label Studio-compatible annotation API of a kubelabel project.",
        openapi_url="/api/schema",
        docs_url="/docs",
        redoc_url=None,
    )
    engine = make_engine(settings.resolved_database_url(), settings.db_pools()[0])
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.metrics_registry = CollectorRegistry(auto_describe=False)
    app.state.metrics_registry.register(ProjectGauges(app.state.session_factory))
    wire()  # every subscriber, job handler, pump, collector and maintenance task: api_server/wiring.py
    # Background jobs (webhooks, ...): run here unless Redis hands them to `kubelabel worker`.
    attach_job_runner(app)
    pg_loop.attach(app, settings, settings.resolved_database_url())

    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]  # Starlette types a handler for any Exception
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]  # Starlette types a handler for any Exception
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]  # Starlette types a handler for any Exception
    app.add_exception_handler(IntegrityError, _database_error)  # type: ignore[arg-type]  # Starlette types a handler for any Exception
    app.add_exception_handler(DataError, _database_error)  # type: ignore[arg-type]  # Starlette types a handler for any Exception
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(RequestTimer)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(TrailingSlash)
    default_openapi = app.openapi
    app.openapi = lambda: canonical_openapi(default_openapi())  # type: ignore[method-assign]  # FastAPI's documented override

    @app.on_event("startup")
    async def _request_threads() -> None:
        to_thread.current_default_thread_limiter().total_tokens = settings.request_threads

    @app.on_event("shutdown")
    def _dispose() -> None:
        engine.dispose()

    return app
