"""claims read each webhook's due deliveries through an index of their own

`ix_webhook_deliveries_due` leads with the webhook: a claim reads each open webhook's due
deliveries oldest first and stops at what it may take (api_server/webhooks/engine.claimable).
On (next_attempt_at, id) alone, a webhook back from an outage had its whole backlog read by every
claim, for every webhook's claims.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 20:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_PENDING = sa.text("status = 'pending'")
_NAME, _TABLE = "ix_webhook_deliveries_due", "webhook_deliveries"


def _recreate(*columns: str) -> None:
    op.drop_index(_NAME, table_name=_TABLE)
    op.create_index(_NAME, _TABLE, list(columns), postgresql_where=_PENDING, sqlite_where=_PENDING)


def upgrade() -> None:
    _recreate("webhook_id", "next_attempt_at", "id")


def downgrade() -> None:
    _recreate("next_attempt_at", "id")
