"""/next tells whether the caller has drafts on the task it hands out

`kubelabel_next_task` returned `fresh` = "the task was new", and the caller then asked for
its drafts on every task it was not the first to take: with overlap 2, half of all /next
calls made a second round trip that found nothing. `fresh` now says what the caller needs:
no drafts of theirs on the task (one index probe inside the function). Otherwise the
function is 0002's, unchanged (api_server/workflow/sql/kubelabel_next_task.v2.sql; downgrade
loads v1).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 04:03:00
"""

from __future__ import annotations

from alembic import op

from api_server.workflow.sql import function

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(function("kubelabel_next_task", 2))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(function("kubelabel_next_task", 1))
