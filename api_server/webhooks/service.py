"""Webhook rules: who manages them, what a valid one is, and turning events into deliveries."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session, object_session, sessionmaker

from api_server import events
from api_server.common.errors import BadRequest, NotFound
from api_server.common.secrets import masked_headers, unmasked_headers
from api_server.common.time import as_utc
from api_server.db.base import utcnow
from api_server.db.models import Project, User, Webhook, WebhookDelivery
from api_server.projects.service import get_project
from api_server.settings import get_settings
from api_server.users.roles import Role
from api_server.users.service import require_org_role
from api_server.webhooks import bulk, payloads, repository, signing
from api_server.webhooks.actions import ACTIONS
from api_server.webhooks.delivery import WRITTEN
from api_server.webhooks.schemas import WebhookCreate, WebhookPublic, WebhookUpdate
from api_server.webhooks.validation import check_headers, check_url

_BATCH = "kubelabel.webhooks.batch"


def to_public(hook: Webhook) -> WebhookPublic:
    session = object_session(hook)
    backlog = (
        repository.backlog(session, [hook.id]).get(hook.id, repository.Backlog())
        if session is not None and hook.id is not None
        else repository.Backlog()
    )
    return WebhookPublic(
        id=hook.id,
        project=hook.project_id,
        url=hook.url,
        send_payload=hook.send_payload,
        send_for_all_actions=hook.send_for_all_actions,
        actions=list(hook.actions or []),
        headers=masked_headers(hook.headers),  # names only: values often hold credentials
        is_active=hook.is_active,
        has_secret=bool(hook.secret),
        consecutive_failures=hook.consecutive_failures,
        pending=backlog.pending,
        failing=backlog.failing,
        backoff_until=as_utc(hook.backoff_until),
        provisioned=hook.provisioned,
        created_at=as_utc(hook.created_at),
        updated_at=as_utc(hook.updated_at),
    )


def _require_manage(session: Session, user: User, project_id: int | None) -> None:
    if project_id is None:
        require_org_role(user, Role.admin)  # organisation-wide webhooks hear every project
        return
    get_project(session, user, project_id, Role.manager)


def get_webhook(session: Session, user: User, webhook_id: int) -> Webhook:
    hook = repository.get(session, webhook_id)
    if hook is None:
        raise NotFound(f"webhook {webhook_id} does not exist")
    _require_manage(session, user, hook.project_id)
    return hook


def list_webhooks(session: Session, user: User, project_id: int | None) -> list[Webhook]:
    if project_id is not None:
        _require_manage(session, user, project_id)
    managed_by = None if user.role == Role.admin else user.id
    return repository.listed(session, project_id=project_id, managed_by=managed_by)


def _apply(hook: Webhook, body: WebhookUpdate) -> None:
    fields = body.model_dump(exclude_unset=True)
    for key in ("url", "send_payload", "send_for_all_actions", "actions", "headers", "is_active"):
        if key in fields and fields[key] is None:
            raise BadRequest(f"{key}: may not be null", validation_errors={key: ["may not be null"]})
    if "url" in fields:
        hook.url = check_url(fields["url"])
    if "headers" in fields:
        # The masked headers of a GET sent back keep their stored values.
        hook.headers = check_headers(unmasked_headers(fields["headers"], hook.headers))
    for key in ("send_payload", "send_for_all_actions", "actions"):
        if key in fields:
            setattr(hook, key, fields[key])
    if "is_active" in fields:
        if fields["is_active"] and not hook.is_active:
            hook.consecutive_failures = 0  # a fresh start when switched back on
            hook.backoff_until = None
        hook.is_active = fields["is_active"]
    if fields.get("secret"):
        hook.secret = fields["secret"]


def create_webhook(session: Session, user: User, body: WebhookCreate) -> tuple[Webhook, str | None]:
    """Create a webhook; returns it and the generated secret when none was given (shown once)."""
    _require_manage(session, user, body.project)
    hook = Webhook(project_id=body.project, url="", actions=[], headers={}, consecutive_failures=0)
    _apply(hook, body)
    generated = None
    if not hook.secret:
        generated = hook.secret = signing.new_secret()
    session.add(hook)
    session.commit()
    return hook, generated


def update_webhook(session: Session, user: User, webhook_id: int, body: WebhookUpdate) -> Webhook:
    hook = get_webhook(session, user, webhook_id)
    _apply(hook, body)
    hook.updated_at = utcnow()
    session.commit()
    return hook


def delete_webhook(session: Session, user: User, webhook_id: int) -> None:
    hook = get_webhook(session, user, webhook_id)
    session.delete(hook)
    session.commit()


def deliveries(
    session: Session, user: User, webhook_id: int, *, offset: int, limit: int
) -> tuple[int, list[WebhookDelivery]]:
    get_webhook(session, user, webhook_id)
    return repository.deliveries(session, webhook_id, offset=offset, limit=limit)


def redeliver(session: Session, user: User, webhook_id: int, delivery_id: int) -> WebhookDelivery:
    """Send a past delivery's payload again, as a new delivery (the original's record stays)."""
    hook = get_webhook(session, user, webhook_id)
    original = session.get(WebhookDelivery, delivery_id)
    if original is None or original.webhook_id != hook.id:
        raise NotFound(f"webhook {webhook_id} has no delivery {delivery_id}")
    delivery = _deliver(session, hook.id, original.action, original.payload, utcnow(), original.task_id)
    session.flush()
    events.wake_after_commit(session)
    session.commit()
    return delivery


def _deliver(
    session: Session, hook_id: int, action: str, payload: dict[str, Any], now: Any, task_id: int | None
) -> WebhookDelivery:
    """A pending delivery: the delivery engine sends it (api_server/webhooks/engine.py)."""
    delivery = WebhookDelivery(
        webhook_id=hook_id,
        action=action,
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        task_id=task_id,
    )
    session.add(delivery)
    return delivery


# Their payload shows the project as the event left it, never a representation read earlier in the batch.
_PROJECT_CHANGES = frozenset({"PROJECT_CREATED", "PROJECT_UPDATED", "PROJECT_DELETED"})


def _hears(hook: repository.Hearing, action: str) -> bool:
    if ACTIONS.get(action) is not None and ACTIONS[action].organization_only and hook.project_id is not None:
        return False  # as in Label Studio: project created/deleted reach organisation-wide webhooks only
    return hook.send_for_all_actions or action in hook.actions


# Who may hear an action in a project (wiring: the fan-out asks every subscriber in one query).
LISTENERS = repository.LISTENING


def _hooks(session: Session, project_id: int) -> list[repository.Hearing]:
    """The webhooks active for the project (its own and organisation-wide ones), read once per fan-out."""
    batch: dict[Any, Any] = session.info.setdefault(_BATCH, {})
    if ("hooks", project_id) not in batch:
        batch["hooks", project_id] = [
            h._replace(actions=list(h.actions or [])) for h in repository.active_for_project(session, project_id)
        ]
    return batch["hooks", project_id]


def hears(session: Session, project_id: int, action: str) -> bool:
    """Whether any active webhook takes `action` in the project (events subscriber's pre-check)."""
    return bool(_hearing(session, project_id, action))


def on_event(session: Session, project_id: int, action: str, objects: dict[str, Any]) -> None:
    """events subscriber (at fan-out): one pending delivery per listening webhook.

    Within one fan-out (one transaction, many events) the project's webhooks and its public
    representation are read once; the deliveries are written in one statement at its end.
    """
    hooks = _hearing(session, project_id, action)
    if not hooks:
        return
    rows = _deliveries(session, project_id, action, objects, hooks)
    batch: dict[Any, Any] = session.info.setdefault(_BATCH, {})
    if "deliveries" not in batch:
        batch["deliveries"] = []
        events.at_batch_end(session, _BATCH, lambda s: _write_deliveries(s, batch["deliveries"]))
    batch["deliveries"] += rows


def prepare(session: Session, events_: list[Any]) -> Callable[[Session], None] | None:
    """events batch subscriber: the deliveries of a whole fan-out batch, made before they are written.

    When every event of the batch that a webhook hears is one the database builds (webhooks/bulk.py),
    one statement builds and writes them all. Otherwise, on PostgreSQL None (on_event per event); on
    SQLite they are made here in Python, before the fan-out takes the write lock."""
    heard = [(e, hooks) for e in events_ if (hooks := _hearing(session, e.project_id, e.action))]
    if bulk.builds_all(session, [e.id for e, _ in heard]):
        pairs: list[tuple[int, int, bool]] = []
        projects: dict[int, Any] = {}
        for e, hooks in heard:
            if any(h.send_payload for h in hooks) and e.project_id not in projects:
                projects[e.project_id] = _project_json(session, e.project_id)
            pairs += [(e.id, h.id, h.send_payload) for h in hooks]
        now = utcnow()
        return lambda s: bulk.write(s, pairs, projects, now)
    if session.get_bind().dialect.name == "postgresql":
        return None
    rows: list[dict[str, Any]] = []
    decoded = events.decode(session, [e for e, _ in heard])
    for (e, hooks), objects in zip(heard, decoded, strict=True):
        rows += _deliveries(session, e.project_id, e.action, objects, hooks)
    return lambda s: _write_deliveries(s, rows)


def _hearing(session: Session, project_id: int, action: str) -> list[repository.Hearing]:
    """The project's active webhooks that hear `action`."""
    return [h for h in _hooks(session, project_id) if _hears(h, action)]


def _deliveries(
    session: Session, project_id: int, action: str, objects: dict[str, Any], hooks: list[repository.Hearing]
) -> list[dict[str, Any]]:
    """One pending delivery per webhook of `hooks` (those that hear `action`), as rows to insert."""
    batch: dict[Any, Any] = session.info.setdefault(_BATCH, {})
    project_json = None
    if action not in _PROJECT_CHANGES and not isinstance(objects.get("project"), dict):
        if ("project", project_id) not in batch:
            batch["project", project_id] = _project_json(session, project_id)
        project_json = batch["project", project_id]
    settings = get_settings()
    full = payloads.build(
        session, project_id, action, objects, max_objects=settings.webhook_max_objects, project_json=project_json
    )
    now = utcnow()
    task_id = events.task_of(objects)
    return [
        {
            "webhook_id": hook.id,
            "action": action,
            "payload": full if hook.send_payload else {"action": action},
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "task_id": task_id,
        }
        for hook in hooks
    ]


# The project as payloads show it, per database: reused while its row is unchanged (updated_at), for
# at most PROJECT_JSON_SECONDS, or COST_FACTOR times what making it took when that is longer; its
# counters are at most that old. Making it counts every task of the project and parses its label
# config: 13 ms with 30,000 tasks on the bench machine, 45 ms with 300,000, 113 ms with a million.
# Made every 0.75 s, a million-task project's form alone kept 15% of a core busy; made at most
# once per COST_FACTOR times its cost, it keeps a thread (and a database backend) 4% busy at most.
PROJECT_JSON_SECONDS = 1.0
COST_FACTOR = 25
_PROJECT_JSON_KEPT = 1000


@dataclass
class _Form:
    updated: datetime  # the project's updated_at when it was made
    made: float  # time.monotonic() then
    fresh_for: float  # seconds it is used for
    form: dict[str, Any]
    text: str | None = None  # its JSON, made when first asked for

    def fresh(self, now: float) -> bool:
        return now - self.made < self.fresh_for


_projects: weakref.WeakKeyDictionary[Engine, dict[int, _Form]] = weakref.WeakKeyDictionary()


def _kept(bind: Any) -> dict[int, _Form]:
    return _projects.setdefault(bind if isinstance(bind, Engine) else bind.engine, {})


def _project_json(session: Session, project_id: int, remake: bool = False) -> dict[str, Any]:
    # Its time of change first (one column): the whole row is read only when the form is made again.
    updated = session.scalar(select(Project.updated_at).where(Project.id == project_id))
    if updated is None:
        return {"id": project_id}
    kept = _kept(session.get_bind())
    now = time.monotonic()
    found = kept.get(project_id)
    if not remake and found is not None and found.updated == updated and found.fresh(now):
        return found.form
    row = session.get(Project, project_id)
    if row is None:
        return {"id": project_id}
    if len(kept) >= _PROJECT_JSON_KEPT:
        kept.clear()
    # project_dict is the API's JSON form already (model_dump(mode="json")).
    made = payloads.project_dict(session, row)
    fresh_for = max(PROJECT_JSON_SECONDS, COST_FACTOR * (time.monotonic() - now))
    kept[project_id] = _Form(row.updated_at, now, fresh_for, made)
    return made


class KeptForm(NamedTuple):
    updated: datetime  # the project's updated_at it was made at (a statement using it checks it still is)
    text: str  # the form as JSON
    age: float  # seconds since it was made
    fresh_for: float  # seconds it is used for after it was made


def kept_project_form(engine: Engine, project_id: int) -> KeptForm | None:
    """The project's payload form, if one was made within its freshness (PROJECT_JSON_SECONDS or more)."""
    found, now = _projects.get(engine, {}).get(project_id), time.monotonic()
    if found is None or not found.fresh(now):
        return None
    if found.text is None:
        found.text = orjson.dumps(found.form).decode()
    return KeptForm(found.updated, found.text, now - found.made, found.fresh_for)


def make_project_form(session_factory: sessionmaker[Session], project_id: int) -> None:
    """Make the project's payload form again now (for `kept_project_form`, ahead of its expiry)."""
    with session_factory() as session:
        _project_json(session, project_id, remake=True)


def _write_deliveries(session: Session, rows: list[dict[str, Any]]) -> None:
    """The fan-out's deliveries in one statement, in event order (each task's in the order sent)."""
    if rows:
        session.execute(insert(WebhookDelivery.__table__), rows)  # Core: no ORM bookkeeping per row
        WRITTEN.labels("python").inc(len(rows))
