"""Webhooks declared in the operator's project file: `"webhooks": [{"url", "actions", "secret_env"}]`.

At every start the provisioned webhooks of the project converge on the file: matching URLs
are updated, new ones created, ones no longer declared deleted. Webhooks created through the
API are never touched. The signing secret is read from the environment variable named by
`secret_env` (the operator fills it from a Secret); without one, deliveries are unsigned.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api_server.common.errors import ApiError
from api_server.db.models import Webhook
from api_server.webhooks.actions import ACTIONS
from api_server.webhooks.validation import check_url

log = logging.getLogger(__name__)


def _declared(entry: Any, index: int) -> tuple[str, list[str], str | None] | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
        log.error("project file: webhooks[%s] needs a url; ignored", index)
        return None
    try:
        url = check_url(entry["url"])
    except ApiError as exc:
        log.error("project file: webhooks[%s]: %s; ignored", index, exc.detail)
        return None
    actions = [a for a in entry.get("actions") or [] if isinstance(a, str)]
    unknown = [a for a in actions if a not in ACTIONS]
    if unknown:
        log.warning("project file: webhooks[%s]: ignoring unknown actions %s", index, unknown)
        actions = [a for a in actions if a in ACTIONS]
    secret = None
    env = entry.get("secret_env")
    if env:
        secret = os.environ.get(str(env)) or None
        if secret is None:
            log.warning("project file: webhooks[%s]: $%s is not set; its deliveries are unsigned", index, env)
    return url, actions, secret


def converge(session: Session, project_id: int, entries: list[Any]) -> None:
    existing = {
        h.url: h for h in session.scalars(select(Webhook).where(Webhook.project_id == project_id, Webhook.provisioned))
    }
    keep: set[str] = set()
    for index, entry in enumerate(entries):
        declared = _declared(entry, index)
        if declared is None:
            continue
        url, actions, secret = declared
        hook = existing.get(url)
        if hook is None:
            hook = Webhook(project_id=project_id, url=url, provisioned=True, headers={}, consecutive_failures=0)
            session.add(hook)
            existing[url] = hook
        hook.actions = actions
        hook.send_for_all_actions = not actions
        hook.send_payload = bool(entry.get("send_payload", True))
        hook.secret = secret
        hook.is_active = True
        keep.add(url)
    for url, hook in existing.items():
        if url not in keep:
            session.delete(hook)
    session.flush()
