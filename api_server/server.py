"""`kubelabel serve`: migrate, bootstrap the admin and the provisioned project, run uvicorn."""

from __future__ import annotations

import gc
import logging
from typing import Any

import uvicorn
from fastapi import FastAPI

from api_server.app import create_app
from api_server.bootstrap import bootstrap
from api_server.common import egress
from api_server.db.capacity import warn_if_over_budget
from api_server.db.migrate import upgrade
from api_server.db.session import make_engine, make_session_factory
from api_server.settings import Settings, get_settings
from api_server.wiring import wire


def app_factory() -> FastAPI:
    """One worker process's app (uvicorn --workers); the parent already migrated and bootstrapped."""
    return _settled(create_app(get_settings()))


def _settled(app: FastAPI) -> FastAPI:
    """The app, with what the process loaded so far frozen out of the cyclic garbage collector.

    Those ~150,000 objects live as long as the serving process; each full collection walked them
    (about 60 ms, a pause for every request in flight). Only for serving processes: a process
    that builds apps and drops them (the tests) would never get their memory back.
    """
    gc.collect()
    gc.freeze()
    return app


def prepare(settings: Settings, *, migrate: bool = True, workers: int = 1) -> None:
    """What runs once before any serving process starts (so they never race on it).

    Migrations, the admin and the provisioned project, and a look at whether the processes
    could open more database connections than the server takes.
    """
    wire()  # the provisioned project's import publishes events: its subscribers must be known
    egress.current_policy()  # a malformed KUBELABEL_EGRESS_ALLOW stops the start, not the first outbound call
    url = settings.resolved_database_url()
    if migrate:
        upgrade(url)
    engine = make_engine(url, 2)
    try:
        bootstrap(make_session_factory(engine), settings)
        warn_if_over_budget(engine, workers, settings.db_connections)
    finally:
        engine.dispose()


def build(settings: Settings, *, migrate: bool = True) -> FastAPI:
    """An app on a prepared database, in this process (the tests' servers)."""
    prepare(settings, migrate=migrate)
    return create_app(settings)


def proxy_options(settings: Settings) -> dict[str, Any]:
    """Whose X-Forwarded-Proto/-For uvicorn believes: only KUBELABEL_FORWARDED_ALLOW_IPS's (uvicorn's
    own default trusts 127.0.0.1). They decide the request's scheme (the cookie's Secure flag) and
    client address (sign-in limits)."""
    allowed = settings.forwarded_allow_ips.strip()
    return {"proxy_headers": bool(allowed), "forwarded_allow_ips": allowed or None}


# How long an idle keep-alive connection is kept open. Longer than the idle time of the clients
# and proxies in front (httpx 5 s, ingress-nginx's upstream 60 s): a server that closes first races
# a request already sent on the connection, which the client then sees reset (a 502 from a proxy).
KEEP_ALIVE_SECONDS = 75


def serve(host: str = "127.0.0.1", port: int = 8080, migrate: bool = True, workers: int = 1) -> int:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level.lower(),
        "access_log": False,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
    }
    options.update(proxy_options(settings))
    prepare(settings, migrate=migrate, workers=max(workers, 1))
    if workers <= 1:
        uvicorn.run(_settled(create_app(settings)), **options)
    else:
        uvicorn.run("api_server.server:app_factory", factory=True, workers=workers, **options)
    return 0
