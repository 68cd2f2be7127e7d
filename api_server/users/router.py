"""Current user, users and tokens (Label Studio paths)."""

from __future__ import annotations

from fastapi import Response
from sqlalchemy import select

from api_server.common.errors import BadRequest, NotFound
from api_server.common.routing import DualSlashRouter
from api_server.db.models import User
from api_server.deps import CurrentUser, SessionDep
from api_server.users import repository, service
from api_server.users.roles import Role
from api_server.users.schemas import (
    TokenCreate,
    TokenCreated,
    TokenInfo,
    TokenResponse,
    UserCreate,
    UserPublic,
    UserUpdate,
)

router = DualSlashRouter(prefix="/api", tags=["users"])


@router.get("/current-user/whoami", response_model=UserPublic)
def whoami(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)


@router.get("/current-user", response_model=UserPublic, include_in_schema=False)
def current_user(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)


@router.post("/current-user/reset-token/", response_model=TokenResponse)
def reset_token(session: SessionDep, user: CurrentUser) -> TokenResponse:
    """Revoke the caller's tokens and issue a new one (shown once)."""
    user = session.merge(user)
    key = service.reset_tokens(session, user)
    session.commit()
    return TokenResponse(token=key)


@router.get("/users/", response_model=list[UserPublic])
def list_users(session: SessionDep, user: CurrentUser) -> list[UserPublic]:
    service.require_org_role(user, Role.manager)
    return [UserPublic.model_validate(u) for u in session.scalars(select(User).order_by(User.id))]


@router.post("/users/", response_model=UserPublic, status_code=201)
def create_user(body: UserCreate, session: SessionDep, user: CurrentUser) -> UserPublic:
    service.require_org_role(user, Role.admin)
    created = service.create_user(session, **body.model_dump(mode="json"))
    session.commit()
    return UserPublic.model_validate(created)


@router.get("/users/{user_id}/", response_model=UserPublic)
def get_user(user_id: int, session: SessionDep, user: CurrentUser) -> UserPublic:
    if user_id != user.id:
        service.require_org_role(user, Role.manager)
    found = session.get(User, user_id)
    if found is None:
        raise NotFound(f"user {user_id} does not exist")
    return UserPublic.model_validate(found)


@router.patch("/users/{user_id}/", response_model=UserPublic)
def update_user(user_id: int, body: UserUpdate, session: SessionDep, user: CurrentUser) -> UserPublic:
    service.require_org_role(user, Role.admin)
    found = session.get(User, user_id)
    if found is None:
        raise NotFound(f"user {user_id} does not exist")
    changes = body.model_dump(exclude_unset=True, mode="json")
    password = changes.pop("password", None)
    for key, value in changes.items():
        setattr(found, key, value)
    if password is not None:
        service.set_password(session, found, password)
    session.commit()
    return UserPublic.model_validate(found)


@router.delete("/users/{user_id}/", status_code=204)
def delete_user(user_id: int, session: SessionDep, user: CurrentUser) -> Response:
    service.require_org_role(user, Role.admin)
    if user_id == user.id:
        raise BadRequest("you cannot delete yourself")
    found = session.get(User, user_id)
    if found is None:
        raise NotFound(f"user {user_id} does not exist")
    session.delete(found)
    session.commit()
    return Response(status_code=204)


@router.post("/users/{user_id}/token/", response_model=TokenResponse, status_code=201)
def issue_token(user_id: int, session: SessionDep, user: CurrentUser) -> TokenResponse:
    """Issue an extra API token for a user (admins only; shown once)."""
    service.require_org_role(user, Role.admin)
    found = session.get(User, user_id)
    if found is None:
        raise NotFound(f"user {user_id} does not exist")
    key = service.issue_token(session, found)
    session.commit()
    return TokenResponse(token=key)


# --- named tokens: list, create (key shown once), revoke ---------------------------------


def _created(token: object, key: str) -> TokenCreated:
    return TokenCreated(**TokenInfo.model_validate(token).model_dump(), token=key)


@router.get("/current-user/tokens/", response_model=list[TokenInfo])
def my_tokens(session: SessionDep, user: CurrentUser) -> list[TokenInfo]:
    """The caller's API tokens (names and prefixes; keys are never shown again)."""
    return [TokenInfo.model_validate(t) for t in repository.tokens_of(session, user.id)]


@router.post("/current-user/tokens/", response_model=TokenCreated, status_code=201)
def create_my_token(body: TokenCreate, session: SessionDep, user: CurrentUser) -> TokenCreated:
    """Create another API token for the caller; the key is in this response only."""
    token, key = service.create_token(session, session.merge(user), body.name)
    session.commit()
    return _created(token, key)


@router.delete("/current-user/tokens/{token_id}/", status_code=204)
def revoke_my_token(token_id: int, session: SessionDep, user: CurrentUser) -> Response:
    service.revoke_token(session, user.id, token_id)
    session.commit()
    return Response(status_code=204)


@router.get("/users/{user_id}/tokens/", response_model=list[TokenInfo])
def user_tokens(user_id: int, session: SessionDep, user: CurrentUser) -> list[TokenInfo]:
    if user_id != user.id:
        service.require_org_role(user, Role.admin)
    if session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} does not exist")
    return [TokenInfo.model_validate(t) for t in repository.tokens_of(session, user_id)]


@router.delete("/users/{user_id}/tokens/{token_id}/", status_code=204)
def revoke_user_token(user_id: int, token_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Revoke one of a user's tokens (admins, or the user themselves)."""
    if user_id != user.id:
        service.require_org_role(user, Role.admin)
    service.revoke_token(session, user_id, token_id)
    session.commit()
    return Response(status_code=204)
