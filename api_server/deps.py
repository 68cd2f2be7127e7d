"""FastAPI dependencies: database session, current user (API token or sign-in cookie), settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api_server.auth import service as auth
from api_server.auth import sessions
from api_server.common.errors import Forbidden, Unauthorized
from api_server.db.models import User
from api_server.settings import Settings
from api_server.users import service as users
from api_server.users.auth_cache import AUTH_CACHE
from api_server.users.tokens import hash_token

# The dependencies are async on purpose: a sync dependency costs a trip through the thread
# pool each (two for one with cleanup), more than the work they do when nothing blocks.


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's session: committed when the request succeeds, rolled back when it fails.

    Services commit their writes themselves; what is left open at the end is reads, and ending
    those with COMMIT rather than ROLLBACK keeps the connection's prepared statements (psycopg
    drops them all on every ROLLBACK). Creating a session touches no database; ending an open
    transaction is a round trip, so it runs off the event loop.
    """
    session = request.app.state.session_factory()
    try:
        yield session
    except BaseException:
        await run_in_threadpool(session.close)
        raise
    if session.in_transaction():
        await run_in_threadpool(_commit_and_close, session)
    else:
        session.close()


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    finally:
        session.close()


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _token_from(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() in {"token", "bearer"} and key.strip():
        return key.strip()
    return None


def _authenticate(factory: sessionmaker[Session], token: str) -> User | None:
    with factory() as session:
        user = users.authenticate(session, token)
        if user is not None:
            session.expunge(user)
        return user


def _session_user(factory: sessionmaker[Session], session_id: str) -> User | None:
    with factory() as session:
        found = auth.session_user(session, session_id)
        if found is None:
            return None
        session.expunge(found[0])
        return found[0]


async def current_user(request: Request) -> User:
    """The caller: by API token (`Authorization: Token ...`, for scripts and the SDK) or by the
    sign-in cookie (the web app). A cookie-authenticated POST, PUT, PATCH or DELETE must also
    carry the session's CSRF token in X-CSRFToken: a cross-site page can make the browser send
    the cookie, but cannot read the token. Token-authenticated requests need none."""
    token = _token_from(request)
    if token is not None:
        return await _token_user(request, token)
    session_id = request.cookies.get(sessions.COOKIE)
    if session_id:
        user = await _cookie_user(request, session_id)
        if request.method not in sessions.SAFE_METHODS and not sessions.csrf_ok(request, session_id):
            raise Forbidden(
                f"CSRF check failed: a request signed in by cookie that changes something needs the header "
                f"{sessions.CSRF_HEADER} with the csrf_token from POST /api/auth/login or GET /api/auth/session"
            )
        return user
    raise Unauthorized(
        "authentication required: send the header 'Authorization: Token <your API token>', "
        "or sign in with POST /api/auth/login"
    )


async def _token_user(request: Request, token: str) -> User:
    return await _cached_user(request, hash_token(token), _authenticate, token, "invalid API token")


async def _cookie_user(request: Request, session_id: str) -> User:
    digest = "session:" + sessions.hash_session_id(session_id)
    ended = "your session has ended (signed out, expired or revoked): sign in again"
    return await _cached_user(request, digest, _session_user, session_id, ended)


async def _cached_user(
    request: Request,
    digest: str,
    load: Callable[[sessionmaker[Session], str], User | None],
    secret: str,
    refused: str,
) -> User:
    """The user a token or session id names: from the short-lived cache, else loaded off the event loop."""
    ttl = request.app.state.settings.auth_cache_seconds
    cached = AUTH_CACHE.get(digest, ttl)
    if cached is not None:
        return cached
    user = await run_in_threadpool(load, request.app.state.session_factory, secret)
    if user is None:
        raise Unauthorized(refused)
    AUTH_CACHE.put(digest, user, ttl)
    return user


CurrentUser = Annotated[User, Depends(current_user)]
