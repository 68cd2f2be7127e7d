"""Membership I/O."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from api_server.users.roles import Role


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: int
    role: Role


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


class MemberPublic(BaseModel):
    user: int
    username: str
    email: str
    first_name: str
    last_name: str
    role: str
    created_at: datetime


class UserSimple(BaseModel):
    """Label Studio's UserSimple (the /annotators/ list)."""

    id: int
    username: str
    email: str
    first_name: str
    last_name: str
    avatar: str | None = None
