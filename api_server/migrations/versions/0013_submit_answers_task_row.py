"""a submission writes its webhook deliveries itself; outbox rows name their task

`kubelabel_submit_checked` version 4 takes `p_task_row` and then answers the task as the
submission left it (`task_row`): the labeling loop writes a submission's webhook deliveries in
the same statement, from that row and the annotation, without an outbox row
(api_server/workflow/sql/kubelabel_submit_checked.v4.sql, api_server/webhooks/bulk.py). Its
parameters and answer change, so the old function is dropped first. It does so only while no
event of the task waits in the outbox (its deliveries come first): outbox rows gain `task_id`.
Webhook payloads are stored as `json` on PostgreSQL, as built: a claim sends them as they are,
where turning `jsonb` back into text cost it more than the rest of its work.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 23:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api_server.workflow.sql import function

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_V3 = (
    "kubelabel_submit_checked(bigint, bigint, boolean, text[], text[], bigint, text, jsonb, boolean, boolean,"
    " double precision, bigint, bigint, bigint, text, timestamptz, timestamptz, text[]"
)


def upgrade() -> None:
    op.add_column("event_outbox", sa.Column("task_id", sa.BigInteger(), nullable=True))
    op.create_index(op.f("ix_event_outbox_task_id"), "event_outbox", ["task_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE webhook_deliveries ALTER COLUMN payload TYPE json USING payload::json")
        op.execute(f"DROP FUNCTION IF EXISTS {_V3})")
        op.execute(function("kubelabel_submit_checked", 4))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {_V3}, boolean)")
        op.execute(function("kubelabel_submit_checked", 3))
        op.execute("ALTER TABLE webhook_deliveries ALTER COLUMN payload TYPE jsonb USING payload::jsonb")
    op.drop_index(op.f("ix_event_outbox_task_id"), table_name="event_outbox")
    with op.batch_alter_table("event_outbox") as batch:
        batch.drop_column("task_id")
