"""Queries on webhooks and their deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import String, Text, and_, bindparam, cast, func, literal_column, or_, select
from sqlalchemy.orm import Session

from api_server.db.models import ProjectMember, Webhook, WebhookDelivery
from api_server.users.roles import RANK, Role


def get(session: Session, webhook_id: int) -> Webhook | None:
    return session.get(Webhook, webhook_id)


def listed(session: Session, *, project_id: int | None, managed_by: int | None) -> list[Webhook]:
    """Webhooks, optionally of one project; `managed_by` limits them to projects that user manages."""
    stmt = select(Webhook)
    if project_id is not None:
        stmt = stmt.where(Webhook.project_id == project_id)
    if managed_by is not None:
        managed = select(ProjectMember.project_id).where(
            ProjectMember.user_id == managed_by,
            ProjectMember.role.in_([r.value for r in RANK if RANK[r] >= RANK[Role.manager]]),
        )
        stmt = stmt.where(Webhook.project_id.in_(managed))
    return list(session.scalars(stmt.order_by(Webhook.id)))


# Active webhooks that hear a project's events (bind `project_id`): its own and organisation-wide ones.
_HEAR_PROJECT = and_(
    Webhook.is_active.is_(True), or_(Webhook.project_id == bindparam("project_id"), Webhook.project_id.is_(None))
)
# ... and take `action` (bind `action`): all actions, or the name quoted in the stored JSON list,
# matched as text, the same on both databases (its `_` escaped: in a LIKE pattern it matches any
# character). Label Studio's one rule beyond the list (project created and deleted reach
# organisation-wide webhooks only) is the fan-out's `hears`.
_NAMED = (
    literal_column("'%\"'", String)
    + func.replace(bindparam("action", type_=String), literal_column("'_'"), literal_column("'\\_'"))
    + literal_column("'\"%'", String)
)
_TAKES = or_(Webhook.send_for_all_actions.is_(True), cast(Webhook.actions, Text).like(_NAMED, escape="\\"))
# events.subscribe's listeners query.
LISTENING = select(Webhook.id).where(_HEAR_PROJECT, _TAKES)
# The webhooks that take `action` in the project, and whether each sends the payload (binds as LISTENING).
TAKING = select(Webhook.id, Webhook.send_payload).where(_HEAR_PROJECT, _TAKES).order_by(Webhook.id)


class Hearing(NamedTuple):
    id: int
    send_payload: bool
    send_for_all_actions: bool
    actions: list[str]
    project_id: int | None


# Plain rows, not ORM objects: every fan-out reads them for each project it has events of.
_HEARING = select(*(getattr(Webhook, f) for f in Hearing._fields)).where(_HEAR_PROJECT).order_by(Webhook.id)


def active_for_project(session: Session, project_id: int) -> list[Hearing]:
    """Active webhooks that hear this project's events: its own and organisation-wide ones."""
    return [Hearing(*row) for row in session.execute(_HEARING, {"project_id": project_id})]


@dataclass(frozen=True)
class Backlog:
    pending: int = 0  # deliveries not sent yet (due, retrying or in flight)
    failing: int = 0  # of those, the ones whose last attempt failed
    oldest: datetime | None = None  # when the oldest pending one was created


def backlog(session: Session, webhook_ids: list[int] | None = None) -> dict[int, Backlog]:
    """Pending deliveries per webhook (only webhooks that have some)."""
    d = WebhookDelivery
    stmt = (
        select(d.webhook_id, func.count(), func.count(d.last_error), func.min(d.created_at))
        .where(d.status == "pending")
        .group_by(d.webhook_id)
    )
    if webhook_ids is not None:
        stmt = stmt.where(d.webhook_id.in_(webhook_ids))
    return {w: Backlog(int(n), int(failing), oldest) for w, n, failing, oldest in session.execute(stmt)}


def deliveries(session: Session, webhook_id: int, *, offset: int, limit: int) -> tuple[int, list[WebhookDelivery]]:
    total = session.scalar(select(func.count()).where(WebhookDelivery.webhook_id == webhook_id)) or 0
    rows = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return int(total), list(rows)
