"""`kubelabel serve`: migrate, bootstrap the admin and the provisioned project, run uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from api_server.app import create_app
from api_server.bootstrap import bootstrap
from api_server.db.migrate import upgrade
from api_server.settings import Settings, get_settings


def build(settings: Settings | None = None, *, migrate: bool = True):  # type: ignore[no-untyped-def]
    settings = settings or get_settings()
    if migrate:
        upgrade(settings.resolved_database_url())
    app = create_app(settings)
    bootstrap(app.state.session_factory, settings)
    return app


def serve(host: str = "127.0.0.1", port: int = 8080, migrate: bool = True) -> int:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = build(settings, migrate=migrate)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False)
    return 0
