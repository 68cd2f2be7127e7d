"""Queries on users, tokens and memberships."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api_server.db.models import ApiToken, ProjectMember, User


def user_by_token_hash(session: Session, token_hash: str) -> User | None:
    stmt = select(User).join(ApiToken, ApiToken.user_id == User.id).where(ApiToken.token_hash == token_hash)
    return session.scalars(stmt).first()


def get(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def all_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def user_by_username(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).first()


def token_exists(session: Session, token_hash: str) -> bool:
    return session.scalar(select(ApiToken.id).where(ApiToken.token_hash == token_hash)) is not None


def membership_role(session: Session, project_id: int, user_id: int) -> str | None:
    return session.scalar(
        select(ProjectMember.role).where(ProjectMember.project_id == project_id, ProjectMember.user_id == user_id)
    )


def tokens_of(session: Session, user_id: int) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)))


def token_of(session: Session, user_id: int, token_id: int) -> ApiToken | None:
    return session.scalars(select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.id == token_id)).first()


def user_token_by_hash(session: Session, token_hash: str) -> ApiToken | None:
    return session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash)).first()


def token_and_user(session: Session, token_hash: str) -> tuple[ApiToken, User] | None:
    stmt = select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(ApiToken.token_hash == token_hash)
    row = session.execute(stmt).first()
    return (row[0], row[1]) if row is not None else None
