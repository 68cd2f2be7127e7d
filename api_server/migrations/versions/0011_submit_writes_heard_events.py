"""the labeling loop's function writes only the events someone hears

`kubelabel_submit_checked` version 3 takes the submission's events that someone hears
(`p_heard text[]`) in place of one flag for all of them, and writes only those into the
event outbox (api_server/workflow/sql/kubelabel_submit_checked.v3.sql). A parameter's type
changes, so the old function is dropped first (CREATE OR REPLACE would add an overload).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 20:20:00
"""

from __future__ import annotations

from alembic import op

from api_server.workflow.sql import function

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_REST = (
    "bigint, text, jsonb, boolean, boolean, double precision, bigint, bigint, bigint, text, timestamptz,"
    " timestamptz, text[]"
)
_V2 = f"kubelabel_submit_checked(bigint, bigint, boolean, text[], boolean, {_REST})"
_V3 = f"kubelabel_submit_checked(bigint, bigint, boolean, text[], text[], {_REST})"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {_V2}")
        op.execute(function("kubelabel_submit_checked", 3))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {_V3}")
        op.execute(function("kubelabel_submit_checked", 2))
