"""Signing in and out: the rules (limits, password check, session rows)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from api_server.auth import passwords, repository
from api_server.auth.ratelimit import LoginLimiter
from api_server.auth.sessions import hash_session_id, new_session_id
from api_server.common.errors import ApiError, Unauthorized
from api_server.db.base import utcnow
from api_server.db.models import AuthSession, User
from api_server.users import service as users
from api_server.users.auth_cache import AUTH_CACHE

# One answer for an unknown user, a user without a password, a wrong password and a blocked user.
WRONG = "wrong username or password"


class TooManyAttempts(ApiError):
    status_code = 429

    def __init__(self, seconds: float) -> None:
        self.retry_after = max(int(seconds + 0.999), 1)
        super().__init__(f"too many failed sign-in attempts; try again in {self.retry_after} seconds")


def login(
    db: Session, limiter: LoginLimiter, *, username: str, password: str, address: str, hours: float
) -> tuple[User, str, datetime]:
    """The user, a new session id (for the cookie only) and its expiry; or 401, or 429 when limited."""
    wait = limiter.attempt(username, address)
    if wait > 0:
        raise TooManyAttempts(wait)
    user = users.by_username(db, username)
    # The check takes a while: no transaction (nor pooled connection) is held open across it.
    db.commit()
    # Always one full Argon2 verification (against a dummy hash when there is no user or password).
    matches = passwords.verify(user.password_hash if user is not None else None, password)
    if user is None or not matches or not user.is_active or user.password_hash is None:
        raise Unauthorized(WRONG)
    limiter.succeeded(username, address)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    now = utcnow()
    repository.delete_expired(db, now)
    session_id = new_session_id()
    expires_at = now + timedelta(hours=hours)
    db.add(AuthSession(user_id=user.id, session_hash=hash_session_id(session_id), expires_at=expires_at))
    db.commit()
    return user, session_id, expires_at


def session_user(db: Session, session_id: str) -> tuple[User, AuthSession] | None:
    """The signed-in user of a live session (an active user, not expired), with the session row."""
    found = repository.session_and_user(db, hash_session_id(session_id), utcnow())
    if found is None or not found[1].is_active:
        return None
    return found[1], found[0]


def logout(db: Session, session_id: str) -> None:
    repository.delete_session(db, hash_session_id(session_id))
    db.commit()
    AUTH_CACHE.clear()
