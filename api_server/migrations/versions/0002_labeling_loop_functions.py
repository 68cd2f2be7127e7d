"""labeling loop functions (PostgreSQL)

The labeling loop's two calls as one database round trip each on PostgreSQL:
`kubelabel_next_task` and `kubelabel_submit` (see api_server/workflow/pg_loop.py). They
follow, statement for statement, the rules of workflow/service.py, workflow/repository.py,
annotations/service.py and tasks/counters.py; what they may not decide alone (the state
machine's table, the roles that may label) comes in as parameters from that Python code.
Whatever they do not handle they refuse before writing, and the Python path takes over.
The statements are versioned files in api_server/workflow/sql (version 1 of each here); a change
to those rules or to the tables they read is a new version and a new migration that loads it.
The API test suite runs on PostgreSQL through these functions and catches a drift, and
tests/integration/api/test_pg_loop_equivalence.py compares them with the services call by call.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 01:30:00
"""

from __future__ import annotations

from alembic import op

from api_server.workflow.sql import function

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(function("kubelabel_next_task", 1))
    op.execute(function("kubelabel_submit", 1))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "DROP FUNCTION IF EXISTS kubelabel_next_task(bigint, bigint, boolean, text[], timestamptz,"
        " double precision, text[])"
    )
    op.execute(
        "DROP FUNCTION IF EXISTS kubelabel_submit(bigint, bigint, bigint, bigint, jsonb, boolean, boolean,"
        " double precision, bigint, bigint, bigint, text, timestamptz, timestamptz, text[])"
    )
