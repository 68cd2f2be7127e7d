"""What the labeling loop's PostgreSQL function writes into the event outbox, read back at fan-out.

`kubelabel_submit_checked` (migration 0008) publishes a submission's events as the services do:
the task as its row's values, the annotation as `{"$row": "annotation_public", "id": ...,
"values": <the row written>}`, which the fan-out turns into the annotation's public form, the one
the services publish (author's username included), as it was created.
Loaded by every process that fans events out (a job handler module, see api_server.jobs.registry).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api_server import events
from api_server.annotations.schemas import STORED_AUTHOR, STORED_KIND, to_public_json
from api_server.db.models import Annotation, User

ANNOTATION_PUBLIC = STORED_KIND


def annotations_public(session: Session, ids: list[int]) -> dict[int, Any]:
    rows = list(session.scalars(select(Annotation).where(Annotation.id.in_(ids))))
    authors = {r.completed_by_id for r in rows if r.completed_by_id is not None}
    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(authors))).tuples().all())
    return {r.id: to_public_json(r, names.get(r.completed_by_id or 0, "")) for r in rows}


def annotation_public(values: dict[str, Any]) -> dict[str, Any]:
    row = events.as_row(Annotation, values)
    return to_public_json(row, str(values.get(STORED_AUTHOR) or ""))


events.resolver(ANNOTATION_PUBLIC, annotations_public, annotation_public)
