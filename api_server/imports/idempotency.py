"""`Idempotency-Key` on imports: a retried request answers the first one's response and writes nothing.

A key belongs to one user, one project and one endpoint (`import` or `predictions`) and lives
`TTL`. It is recorded, with a fingerprint of the request and the response, in the import's
own transaction: a key exists exactly when its import does. Task imports look the key up
under the project lock the import takes anyway, so a concurrent request with the same key
waits for the first and then answers its response. The unique constraint on the key is the
last guard: a second writer that gets past the lookup fails its insert and writes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api_server.common.errors import BadRequest, Conflict
from api_server.db.base import utcnow
from api_server.db.models import IdempotencyKey

HEADER = "Idempotency-Key"
TTL = timedelta(hours=24)
MAX_LENGTH = 255


def key_of(key: str | None) -> str | None:
    """The request's key, or None; a malformed key is a 400 naming the header."""
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_LENGTH or not all(" " <= c <= "~" for c in key):
        raise BadRequest(
            f"{HEADER}: 1 to {MAX_LENGTH} printable ASCII characters",
            validation_errors={HEADER: [f"1 to {MAX_LENGTH} printable ASCII characters"]},
        )
    return key


class Fingerprint:
    """SHA-256 over what makes two requests the same import: the endpoint, the query, the body."""

    def __init__(self, scope: str, query: Iterable[tuple[str, str]], kind: str) -> None:
        self._hash = hashlib.sha256()
        for part in (scope, kind, *(f"{k}={v}" for k, v in sorted(query))):
            self.add(part.encode())

    def add(self, part: bytes) -> None:
        """One delimited part (a form field, a file's name)."""
        self._hash.update(b"%d:" % len(part))
        self._hash.update(part)

    def stream(self, chunk: bytes) -> None:
        """Bytes of a body, in any chunking."""
        self._hash.update(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class KeyUsed(Exception):
    """The key was used by an earlier request whose response is recorded."""

    def __init__(self, row: IdempotencyKey) -> None:
        super().__init__(row.key)
        self.row = row


def check_unused(session: Session, user_id: int, project_id: int, scope: str, key: str) -> None:
    """Raise KeyUsed when an unexpired record of this key exists."""
    row = session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.project_id == project_id,
            IdempotencyKey.scope == scope,
            IdempotencyKey.key == key,
            IdempotencyKey.created_at > utcnow() - TTL,
        )
    ).first()
    if row is not None:
        raise KeyUsed(row)


def record(
    session: Session,
    *,
    user_id: int,
    project_id: int,
    scope: str,
    key: str,
    fingerprint: str,
    status_code: int,
    response: bytes,
) -> None:
    """Record the key in the caller's transaction (which the caller commits with its import)."""
    # Expired keys of the project go here, where the project is written anyway (and a reused expired key with them).
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.project_id == project_id, IdempotencyKey.created_at <= utcnow() - TTL
        )
    )
    session.add(
        IdempotencyKey(
            user_id=user_id,
            project_id=project_id,
            scope=scope,
            key=key,
            fingerprint=fingerprint,
            status_code=status_code,
            response=response.decode(),
        )
    )
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            f"{HEADER}: a request with this key is in progress or has just finished; retry to get its response",
            validation_errors={HEADER: ["in progress"]},
        ) from None


@contextmanager
def recorded_on_commit(session: Session, **fields: Any) -> Iterator[None]:
    """Record the key in whatever commit the block makes (for services that commit themselves)."""

    def before_commit(committing: Session) -> None:
        record(committing, **fields)

    event.listen(session, "before_commit", before_commit, once=True)
    try:
        yield
    finally:
        if event.contains(session, "before_commit", before_commit):
            event.remove(session, "before_commit", before_commit)


def replayed(used: KeyUsed, fingerprint: str) -> tuple[int, bytes]:
    """The first request's status and body, when this request is the same; otherwise a 409."""
    row = used.row
    if row.fingerprint != fingerprint:
        raise Conflict(
            f"{HEADER}: this key was used for a different request (another body or query) "
            f"at {row.created_at.isoformat()}; use a new key for a new import",
            validation_errors={HEADER: ["used for a different request"]},
        )
    return row.status_code, row.response.encode()
