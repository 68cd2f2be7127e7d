"""Users, passwords and tokens: creation, the bootstrap admin, authentication."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from api_server.auth import passwords
from api_server.auth import repository as auth_repository
from api_server.common.errors import BadRequest, Conflict, Forbidden, NotFound, field_error
from api_server.common.time import as_utc
from api_server.db.base import utcnow
from api_server.db.models import ApiToken, User
from api_server.users import repository
from api_server.users.auth_cache import AUTH_CACHE
from api_server.users.roles import Role, at_least
from api_server.users.schemas import TokenCreated, TokenInfo, UserCreate, UserPublic, UserUpdate
from api_server.users.tokens import hash_token, new_token

# last_used_at is refreshed at most this often, so reads do not each cost a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def authenticate(session: Session, token: str) -> User | None:
    found = repository.token_and_user(session, hash_token(token))
    if found is None or not found[1].is_active:
        return None
    api_token, user = found
    now = utcnow()
    if api_token.last_used_at is None or as_utc(api_token.last_used_at) < now - LAST_USED_RESOLUTION:
        try:
            session.execute(update(ApiToken).where(ApiToken.id == api_token.id).values(last_used_at=now))
            session.commit()
        except SQLAlchemyError:  # bookkeeping only: never refuse a request over it
            session.rollback()
    return user


def by_username(session: Session, username: str) -> User | None:
    return repository.user_by_username(session, username)


def create_user(
    session: Session,
    *,
    username: str,
    role: str = Role.annotator,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
) -> User:
    if repository.user_by_username(session, username) is not None:
        raise Conflict(f"username '{username}' is taken", validation_errors={"username": ["already exists"]})
    user = User(username=username, role=Role(role).value, email=email, first_name=first_name, last_name=last_name)
    session.add(user)
    session.flush()
    if password is not None:
        set_password(session, user, password)
    return user


def set_password(session: Session, user: User, password: str | None) -> None:
    """Set (or, with None, remove) the user's password; every signed-in session of theirs ends."""
    if password is not None:
        why = passwords.problem(password)
        if why is not None:
            raise field_error("password", why)
    user.password_hash = passwords.hash_password(password) if password is not None else None
    auth_repository.delete_sessions_of(session, user.id)
    session.flush()
    AUTH_CACHE.clear()


def ensure_admin_password(session: Session, user: User, password: str) -> bool:
    """Give the admin exactly this password (idempotent: an unchanged one keeps its sessions).
    True when it changed."""
    if user.password_hash is not None and passwords.verify(user.password_hash, password):
        return False
    set_password(session, user, password)
    return True


def issue_token(session: Session, user: User, *, token: str | None = None, name: str = "default") -> str:
    """Create an API token for the user and return its key (the only time it is visible)."""
    key = token or new_token()
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(key), prefix=key[:8], name=name))
    session.flush()
    return key


def reset_tokens(session: Session, user: User) -> str:
    session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    return issue_token(session, user)


def ensure_admin(session: Session, *, username: str, token: str) -> User:
    """Make sure an admin exists whose API token is exactly `token` (idempotent)."""
    digest = hash_token(token)
    holder = repository.user_by_token_hash(session, digest)
    if holder is not None:
        if holder.role != Role.admin:
            holder.role = Role.admin.value
        return holder
    user = repository.user_by_username(session, username)
    if user is None:
        user = create_user(session, username=username, role=Role.admin)
    else:
        user.role = Role.admin.value
    issue_token(session, user, token=token, name="bootstrap")
    return user


def project_role(session: Session, user: User, project_id: int) -> str | None:
    """The role the user acts with in a project: admin everywhere, else the membership role."""
    membership = None if user.role == Role.admin else repository.membership_role(session, project_id, user.id)
    return acting_role(user, membership)


def acting_role(user: User, membership: str | None) -> str | None:
    """The role a user with this membership role (None: not a member) acts with: admins are admins everywhere."""
    return Role.admin.value if user.role == Role.admin else membership


def check_project_role(role: str | None, project_id: int, minimum: Role) -> str:
    """The role, if it is at least `minimum`; else a 403 naming the role needed. The rule of the one
    access check (projects.service.project_access) and of the PostgreSQL labeling loop."""
    if role is None or not at_least(role, minimum):
        have = role or "no role"
        raise Forbidden(f"this needs the {minimum.value} role (or higher) in project {project_id}; you have {have}")
    return role


def require_org_role(user: User, minimum: Role) -> None:
    if not at_least(user.role, minimum):
        raise Forbidden(f"this needs the {minimum.value} role (or higher); you have {user.role}")


def create_token(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """A new named token for the user: the row and its key (shown once)."""
    key = issue_token(session, user, name=name)
    token = repository.user_token_by_hash(session, hash_token(key))
    assert token is not None
    return token, key


def revoke_token(session: Session, user_id: int, token_id: int) -> None:
    token = repository.token_of(session, user_id, token_id)
    if token is None:
        raise NotFound(f"user {user_id} has no token {token_id}")
    session.delete(token)


# --- the API's operations: the caller's rights checked, the change committed, public shapes out ------


def _existing(session: Session, user_id: int) -> User:
    found = repository.get(session, user_id)
    if found is None:
        raise NotFound(f"user {user_id} does not exist")
    return found


def _self_or(caller: User, user_id: int, minimum: Role) -> None:
    """Anyone may act on themselves; on another user only with the org role `minimum`."""
    if user_id != caller.id:
        require_org_role(caller, minimum)


def list_users(session: Session, caller: User) -> list[UserPublic]:
    require_org_role(caller, Role.manager)
    return [UserPublic.model_validate(u) for u in repository.all_users(session)]


def get_user(session: Session, caller: User, user_id: int) -> UserPublic:
    _self_or(caller, user_id, Role.manager)
    return UserPublic.model_validate(_existing(session, user_id))


def add_user(session: Session, caller: User, body: UserCreate) -> UserPublic:
    require_org_role(caller, Role.admin)
    created = create_user(session, **body.model_dump(mode="json"))
    session.commit()
    return UserPublic.model_validate(created)


def update_user(session: Session, caller: User, user_id: int, body: UserUpdate) -> UserPublic:
    require_org_role(caller, Role.admin)
    found = _existing(session, user_id)
    changes = body.model_dump(exclude_unset=True, mode="json")
    password = changes.pop("password", None)
    for key, value in changes.items():
        setattr(found, key, value)
    if password is not None:
        set_password(session, found, password)
    session.commit()
    return UserPublic.model_validate(found)


def delete_user(session: Session, caller: User, user_id: int) -> None:
    require_org_role(caller, Role.admin)
    if user_id == caller.id:
        raise BadRequest("you cannot delete yourself")
    session.delete(_existing(session, user_id))
    session.commit()


def issue_token_for(session: Session, caller: User, user_id: int) -> str:
    """An extra API token for a user (admins only); its key, shown once."""
    require_org_role(caller, Role.admin)
    key = issue_token(session, _existing(session, user_id))
    session.commit()
    return key


def reset_own_tokens(session: Session, caller: User) -> str:
    # The caller comes from the auth cache, detached: merged into this session to be written.
    key = reset_tokens(session, session.merge(caller))
    session.commit()
    return key


def list_tokens(session: Session, caller: User, user_id: int) -> list[TokenInfo]:
    """A user's tokens (names and prefixes; keys are never shown again): their own, or any for admins."""
    _self_or(caller, user_id, Role.admin)
    _existing(session, user_id)
    return [TokenInfo.model_validate(t) for t in repository.tokens_of(session, user_id)]


def create_own_token(session: Session, caller: User, name: str) -> TokenCreated:
    token, key = create_token(session, session.merge(caller), name)
    session.commit()
    return TokenCreated(**TokenInfo.model_validate(token).model_dump(), token=key)


def revoke_token_of(session: Session, caller: User, user_id: int, token_id: int) -> None:
    _self_or(caller, user_id, Role.admin)
    revoke_token(session, user_id, token_id)
    session.commit()
