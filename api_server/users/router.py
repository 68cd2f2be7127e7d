"""Current user, users and tokens (Label Studio paths)."""

from __future__ import annotations

from fastapi import Response

from api_server.common.routing import DualSlashRouter
from api_server.deps import CurrentUser, SessionDep
from api_server.users import service
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
    return TokenResponse(token=service.reset_own_tokens(session, user))


@router.get("/users/", response_model=list[UserPublic])
def list_users(session: SessionDep, user: CurrentUser) -> list[UserPublic]:
    return service.list_users(session, user)


@router.post("/users/", response_model=UserPublic, status_code=201)
def create_user(body: UserCreate, session: SessionDep, user: CurrentUser) -> UserPublic:
    return service.add_user(session, user, body)


@router.get("/users/{user_id}/", response_model=UserPublic)
def get_user(user_id: int, session: SessionDep, user: CurrentUser) -> UserPublic:
    return service.get_user(session, user, user_id)


@router.patch("/users/{user_id}/", response_model=UserPublic)
def update_user(user_id: int, body: UserUpdate, session: SessionDep, user: CurrentUser) -> UserPublic:
    return service.update_user(session, user, user_id, body)


@router.delete("/users/{user_id}/", status_code=204)
def delete_user(user_id: int, session: SessionDep, user: CurrentUser) -> Response:
    service.delete_user(session, user, user_id)
    return Response(status_code=204)


@router.post("/users/{user_id}/token/", response_model=TokenResponse, status_code=201)
def issue_token(user_id: int, session: SessionDep, user: CurrentUser) -> TokenResponse:
    """Issue an extra API token for a user (admins only; shown once)."""
    return TokenResponse(token=service.issue_token_for(session, user, user_id))


# --- named tokens: list, create (key shown once), revoke ---------------------------------


@router.get("/current-user/tokens/", response_model=list[TokenInfo])
def my_tokens(session: SessionDep, user: CurrentUser) -> list[TokenInfo]:
    """The caller's API tokens (names and prefixes; keys are never shown again)."""
    return service.list_tokens(session, user, user.id)


@router.post("/current-user/tokens/", response_model=TokenCreated, status_code=201)
def create_my_token(body: TokenCreate, session: SessionDep, user: CurrentUser) -> TokenCreated:
    """Create another API token for the caller; the key is in this response only."""
    return service.create_own_token(session, user, body.name)


@router.delete("/current-user/tokens/{token_id}/", status_code=204)
def revoke_my_token(token_id: int, session: SessionDep, user: CurrentUser) -> Response:
    service.revoke_token_of(session, user, user.id, token_id)
    return Response(status_code=204)


@router.get("/users/{user_id}/tokens/", response_model=list[TokenInfo])
def user_tokens(user_id: int, session: SessionDep, user: CurrentUser) -> list[TokenInfo]:
    return service.list_tokens(session, user, user_id)


@router.delete("/users/{user_id}/tokens/{token_id}/", status_code=204)
def revoke_user_token(user_id: int, token_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Revoke one of a user's tokens (admins, or the user themselves)."""
    service.revoke_token_of(session, user, user_id, token_id)
    return Response(status_code=204)
