"""Session ids, the cookie that carries them, and the CSRF token bound to each.

The cookie holds a random 256-bit id; the database keeps only its SHA-256 (as for API tokens), so
a copy of the database signs nobody in. The CSRF token is an HMAC of the session id: only the
holder of the session can know it, it needs no storage, and it dies with the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "kubelabel_session"
CSRF_HEADER = "X-CSRFToken"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def hash_session_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def csrf_token(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"kubelabel csrf", hashlib.sha256).hexdigest()


def csrf_ok(request: Request, session_id: str) -> bool:
    sent = request.headers.get(CSRF_HEADER, "")
    return hmac.compare_digest(sent.encode(), csrf_token(session_id).encode())


def set_cookie(response: Response, request: Request, session_id: str, max_age: int) -> None:
    """HttpOnly (no script reads it), SameSite=Lax (not sent on cross-site writes), Secure when the
    request came over TLS (directly, or from a proxy trusted by KUBELABEL_FORWARDED_ALLOW_IPS)."""
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https")
