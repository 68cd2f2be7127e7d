"""User and token I/O."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from api_server.auth.passwords import MAX_LENGTH, MIN_LENGTH
from api_server.common.inputs import UpdateBody
from api_server.users.roles import Role

# Passwords are write-only: accepted here, never part of a response model.
_SECRET: JsonDict = {"writeOnly": True, "format": "password"}


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    email: str
    first_name: str
    last_name: str
    role: str
    is_active: bool
    created_at: datetime


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=150, pattern=r"^[\w.@+-]+$")
    email: str = Field(default="", max_length=254)
    first_name: str = Field(default="", max_length=150)
    last_name: str = Field(default="", max_length=150)
    role: Role = Role.annotator
    password: str | None = Field(default=None, min_length=MIN_LENGTH, max_length=MAX_LENGTH, json_schema_extra=_SECRET)


class UserUpdate(UpdateBody):
    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=254)
    first_name: str | None = Field(default=None, max_length=150)
    last_name: str | None = Field(default=None, max_length=150)
    role: Role | None = None
    is_active: bool | None = None
    # Sets a new password and ends the user's signed-in sessions.
    password: str | None = Field(default=None, min_length=MIN_LENGTH, max_length=MAX_LENGTH, json_schema_extra=_SECRET)


class TokenResponse(BaseModel):
    token: str


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="default", min_length=1, max_length=100)


class TokenInfo(BaseModel):
    """A token's metadata; the key itself is only ever shown when it is created."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class TokenCreated(TokenInfo):
    token: str
