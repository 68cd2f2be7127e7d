"""a submission's checks and its write in one database call

`kubelabel_submit_checked` reads what a submission is checked against (the task's project,
the caller's membership, the project's submission rules) and, when the caller's checks were
made against those same rules, writes through `kubelabel_submit` (0002). The PostgreSQL path
(api_server/workflow/pg_loop.py) validates the annotation in Python against the rules it
last saw for the project and passes their fingerprint; when they are not the project's
current ones the function writes nothing and answers `stale` with the current rules, and the
caller checks again. So a submission is one round trip instead of two (a query for the rules,
then the write). It also refuses, writing nothing: a task that does not exist (`missing`),
a submission someone listens for (`listening`: the caller computes that in the same
statement, from the Python event subscribers), a role not among those the caller allows
(`forbidden`). Each of those is answered by the services.
The statement: api_server/workflow/sql/kubelabel_submit_checked.v1.sql.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 04:19:00
"""

from __future__ import annotations

from alembic import op

from api_server.workflow.sql import function

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(function("kubelabel_submit_checked", 1))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS kubelabel_submit_checked(bigint, bigint, boolean, text[], boolean, bigint, text,"
            " jsonb, boolean, boolean, double precision, bigint, bigint, bigint, text, timestamptz, timestamptz,"
            " text[])"
        )
