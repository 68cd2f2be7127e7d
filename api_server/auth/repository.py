"""Queries on sign-in sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api_server.db.models import AuthSession, User


def session_and_user(db: Session, session_hash: str, now: datetime) -> tuple[AuthSession, User] | None:
    stmt = (
        select(AuthSession, User)
        .join(User, User.id == AuthSession.user_id)
        .where(AuthSession.session_hash == session_hash, AuthSession.expires_at > now)
    )
    row = db.execute(stmt).first()
    return (row[0], row[1]) if row is not None else None


def delete_session(db: Session, session_hash: str) -> None:
    db.execute(delete(AuthSession).where(AuthSession.session_hash == session_hash))


def delete_sessions_of(db: Session, user_id: int) -> None:
    db.execute(delete(AuthSession).where(AuthSession.user_id == user_id))


def delete_expired(db: Session, now: datetime) -> None:
    db.execute(delete(AuthSession).where(AuthSession.expires_at <= now))
