"""an outbox for events, and deliveries claimed by the delivery engine

`event_outbox` holds what services and the labeling loop's functions published, written in the
same transaction as the change (api_server/events.py); the delivery engine fans each row out to
the subscribers (webhooks, export storages, ML triggers) off the request path and deletes it.
`kubelabel_submit_checked` (0005) no longer hands a submission someone listens for back to the
services: it writes it and its events (`ANNOTATION_CREATED`, and `TASK_COMPLETED` when the
submission completed the task) into the outbox, and answers `published` instead of `ok`
(api_server/workflow/sql/kubelabel_submit_checked.v2.sql; downgrade loads v1).

Deliveries are claimed by the engine itself (api_server/webhooks/engine.py), many per round
trip: `task_id` keeps one task's deliveries to a webhook in order, `locked_until` is a claim's
lease, and `webhooks.backoff_until` holds back a failing endpoint without holding back others.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from api_server.workflow.sql import function

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column(
            "objects",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_outbox")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("task_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_webhook_deliveries_due",
            ["next_attempt_at", "id"],
            unique=False,
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        )
        batch_op.create_index(
            "ix_webhook_deliveries_task_order",
            ["webhook_id", "task_id", "id"],
            unique=False,
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        )
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("backoff_until", sa.DateTime(timezone=True), nullable=True))
    # Deliveries were one job each; the engine claims pending deliveries itself.
    op.execute("UPDATE jobs SET status = 'done' WHERE kind = 'webhook.deliver' AND status IN ('queued', 'running')")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(function("kubelabel_submit_checked", 2))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(function("kubelabel_submit_checked", 1))
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("backoff_until")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_task_order")
        batch_op.drop_index("ix_webhook_deliveries_due")
        batch_op.drop_column("locked_until")
        batch_op.drop_column("task_id")
    op.drop_table("event_outbox")
