"""Sign-in over HTTP: log in (sets the cookie), log out, who is signed in."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api_server.auth import passwords, service, sessions
from api_server.auth.ratelimit import LoginLimiter
from api_server.auth.schemas import LoginBody, SessionInfo
from api_server.common.errors import BadRequest, Forbidden, UnsupportedMediaType
from api_server.common.inputs import InputError, check_value, parse_json
from api_server.common.openapi import ErrorBody
from api_server.common.routing import DualSlashRouter
from api_server.db.session import session_scope
from api_server.deps import CurrentUser
from api_server.settings import Settings
from api_server.users.schemas import UserPublic

router = DualSlashRouter(prefix="/api/auth", tags=["auth"])

_LOGIN_BODY = {
    "required": True,
    "content": {
        media: {"schema": LoginBody.model_json_schema()}
        for media in ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")
    },
}
_LOGIN_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "Posted by a page of another origin (the Origin header)"},
    401: {"model": ErrorBody, "description": "Wrong username or password (one answer for every reason)"},
    429: {
        "model": ErrorBody,
        "description": "Too many failed attempts for this username or client address; Retry-After says how long",
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    },
}


def _limiter(request: Request) -> LoginLimiter:
    """One per app (its in-process counts must outlive requests), made on first use."""
    state = request.app.state
    if getattr(state, "login_limiter", None) is None:
        settings: Settings = state.settings
        state.login_limiter = LoginLimiter(
            settings.redis_url, settings.redis_prefix, settings.login_max_failures, settings.login_lockout_seconds
        )
    return state.login_limiter


def _same_site_or_no_browser(request: Request) -> None:
    """Refuse a sign-in posted by another site's page (a browser names that page's origin): it
    would sign the visitor in as someone else, the attacker's account (login CSRF). Clients
    that send no Origin (scripts, curl) are not browsers posting cross-site."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower():
        raise Forbidden(f"sign-in from a page of another origin is refused (Origin: {origin[:100]})")


def _sign_in_slots(request: Request) -> asyncio.Semaphore:
    """Sign-ins in the thread pool at once (as many as password checks may run, passwords.py): a
    burst waits here, on the event loop, not in threads every other request needs."""
    state = request.app.state
    if getattr(state, "sign_in_slots", None) is None:
        state.sign_in_slots = asyncio.Semaphore(passwords.AT_ONCE)
    return state.sign_in_slots


async def _credentials(request: Request) -> LoginBody:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media in ("", "application/json") or media.endswith("+json"):
        data: Any = parse_json(await request.body())
    elif media in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        data = {key: value for key, value in form.items() if isinstance(value, str)}
        try:
            check_value(data)
        except InputError as exc:
            raise BadRequest(f"{exc.field}: {exc.message}", validation_errors={exc.field: [exc.message]}) from None
    else:
        raise UnsupportedMediaType("send username and password as JSON or as a form")
    try:
        return LoginBody.model_validate(data)
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for err in exc.errors():
            field = ".".join(str(p) for p in err.get("loc", ())) or "body"
            errors.setdefault(field, []).append("unknown field" if err["type"] == "extra_forbidden" else err["msg"])
        detail = "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in errors.items())
        raise BadRequest(detail, validation_errors=errors) from None


@router.post(
    "/login",
    response_model=SessionInfo,
    responses=_LOGIN_ERRORS,
    openapi_extra={"requestBody": _LOGIN_BODY},
)
async def login(request: Request) -> Response:
    """Sign in with a username and password (JSON or form). Sets the HttpOnly session cookie and
    answers the user and the session's CSRF token (for the X-CSRFToken header of later writes)."""
    _same_site_or_no_browser(request)
    body = await _credentials(request)
    settings: Settings = request.app.state.settings
    address = request.client.host if request.client else "unknown"

    def run() -> tuple[dict[str, Any], str, int]:
        with session_scope(request.app.state.session_factory) as db:
            user, session_id, expires_at = service.login(
                db,
                _limiter(request),
                username=body.username,
                password=body.password,
                address=address,
                hours=settings.session_hours,
            )
            info = SessionInfo(
                user=UserPublic.model_validate(user), csrf_token=sessions.csrf_token(session_id), expires_at=expires_at
            )
            return info.model_dump(mode="json"), session_id, int(settings.session_hours * 3600)

    try:
        async with _sign_in_slots(request):
            payload, session_id, max_age = await run_in_threadpool(run)
    except service.TooManyAttempts as exc:
        return JSONResponse(exc.body(), status_code=429, headers={"Retry-After": str(exc.retry_after)})
    response = JSONResponse(payload, headers={"Cache-Control": "no-store"})
    sessions.set_cookie(response, request, session_id, max_age)
    return response


@router.post("/logout", status_code=204, responses={403: {"model": ErrorBody, "description": "CSRF check failed"}})
async def logout(request: Request) -> Response:
    """Sign out: the session is deleted on the server (the cookie stops working everywhere) and
    the cookie is cleared. Needs the X-CSRFToken header when a live session cookie is sent."""
    session_id = request.cookies.get(sessions.COOKIE)
    if session_id:
        if not sessions.csrf_ok(request, session_id):
            # A dead session may sign out without it: there is nothing left to protect.
            live = await run_in_threadpool(_is_live, request, session_id)
            if live:
                raise Forbidden(f"CSRF check failed: signing out needs the header {sessions.CSRF_HEADER}")
        await run_in_threadpool(_end, request, session_id)
    response = Response(status_code=204)
    sessions.clear_cookie(response, request)
    return response


def _is_live(request: Request, session_id: str) -> bool:
    with session_scope(request.app.state.session_factory) as db:
        return service.session_user(db, session_id) is not None


def _end(request: Request, session_id: str) -> None:
    with session_scope(request.app.state.session_factory) as db:
        service.logout(db, session_id)


@router.get("/session", response_model=SessionInfo)
def current_session(request: Request, user: CurrentUser) -> SessionInfo:
    """Who is signed in, with the session's CSRF token and expiry (both null for an API token)."""
    session_id = request.cookies.get(sessions.COOKIE)
    if session_id and request.headers.get("authorization") is None:
        with session_scope(request.app.state.session_factory) as db:
            found = service.session_user(db, session_id)
        if found is not None:
            return SessionInfo(
                user=UserPublic.model_validate(user),
                csrf_token=sessions.csrf_token(session_id),
                expires_at=found[1].expires_at,
            )
    return SessionInfo(user=UserPublic.model_validate(user), csrf_token=None, expires_at=None)
