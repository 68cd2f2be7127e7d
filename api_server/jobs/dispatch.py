"""Wake whoever runs jobs once the transaction that enqueued them has committed.

`enqueue` records the new job ids on the session; after a commit they are handed to the
notifier registered for the session's engine (Redis push in the API with Redis, a local
wake-up for the in-process runner). A rollback forgets them. Without a notifier nothing
happens: polling finds the rows anyway.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_KEY = "kubelabel.jobs.pending"
Notifier = Callable[[list[int]], None]
_notifiers: weakref.WeakKeyDictionary[Engine, Notifier] = weakref.WeakKeyDictionary()


def register(engine: Engine, notifier: Notifier) -> None:
    _notifiers[engine] = notifier


def unregister(engine: Engine) -> None:
    _notifiers.pop(engine, None)


def remember(session: Session, job_id: int) -> None:
    session.info.setdefault(_KEY, []).append(job_id)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    ids = session.info.pop(_KEY, None)
    if not ids:
        return
    try:
        bind = session.get_bind()
    except Exception:  # an unbound session cannot have enqueued anything
        return
    engine = bind if isinstance(bind, Engine) else bind.engine
    notifier = _notifiers.get(engine)
    if notifier is None:
        return
    try:
        notifier(list(ids))
    except Exception:  # never fail a committed request because a wake-up could not be sent
        log.exception("could not announce jobs %s (they will be found by polling)", ids)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)
