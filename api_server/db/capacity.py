"""Whether the server processes could open more PostgreSQL connections than the server accepts.

Each `kubelabel serve` process may open up to KUBELABEL_DB_CONNECTIONS (its engine and the
labeling loop's pool together). Past PostgreSQL's `max_connections`, new connections fail
under load ("too many clients already"), long after start: said once, at start, instead.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, text

from api_server.db.session import is_sqlite

log = logging.getLogger(__name__)


def over_budget(workers: int, per_process: int, max_connections: int, reserved: int) -> str | None:
    """The warning when `workers` processes could open more connections than the server lets in."""
    wanted, available = workers * per_process, max_connections - reserved
    if wanted <= available:
        return None
    return (
        f"{workers} server process(es) x KUBELABEL_DB_CONNECTIONS={per_process} may open {wanted} PostgreSQL"
        f" connections, more than the {available} this server accepts (max_connections={max_connections},"
        f" {reserved} reserved for superusers): lower KUBELABEL_WORKERS or KUBELABEL_DB_CONNECTIONS, or raise"
        " max_connections (other clients of the database count too)"
    )


def warn_if_over_budget(engine: Engine, workers: int, per_process: int) -> None:
    if is_sqlite(engine):
        return
    with engine.connect() as conn:
        max_connections = int(conn.execute(text("SHOW max_connections")).scalar_one())
        reserved = int(conn.execute(text("SHOW superuser_reserved_connections")).scalar_one())
    if (warning := over_budget(workers, per_process, max_connections, reserved)) is not None:
        log.warning(warning)
