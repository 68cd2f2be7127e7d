"""Sign-in I/O. The password is input only: no response model has it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api_server.auth.passwords import MAX_LENGTH
from api_server.users.schemas import UserPublic


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"username": "alice", "password": "…"}]})

    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=MAX_LENGTH, json_schema_extra={"writeOnly": True})


class SessionInfo(BaseModel):
    """Who is signed in. `csrf_token` goes in the X-CSRFToken header of every cookie-authenticated
    POST, PUT, PATCH and DELETE; it is null when the request was authenticated by an API token."""

    user: UserPublic
    csrf_token: str | None
    expires_at: datetime | None
