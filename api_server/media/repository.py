"""Queries on uploaded media files' records."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api_server.db.models import MediaFile


def file_named(session: Session, project_id: int, name: str) -> MediaFile | None:
    return session.scalar(select(MediaFile).where(MediaFile.project_id == project_id, MediaFile.name == name))
