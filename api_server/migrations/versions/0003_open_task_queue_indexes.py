"""the next-task queue's indexes hold open tasks only; task locks indexed by user, not by expiry

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OPEN = sa.text("NOT is_labeled")
OPEN_SQLITE = sa.text("is_labeled = 0")  # how SQLAlchemy writes `~Task.is_labeled` there


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_project_labeled")
        batch_op.drop_index("ix_tasks_project_queue_score")
        batch_op.create_index(
            "ix_tasks_queue", ["project_id", "inner_id", "id"], postgresql_where=OPEN, sqlite_where=OPEN_SQLITE
        )
        batch_op.create_index(
            "ix_tasks_queue_score",
            ["project_id", "prediction_score", "id"],
            postgresql_where=OPEN,
            sqlite_where=OPEN_SQLITE,
        )
    with op.batch_alter_table("task_locks", schema=None) as batch_op:
        batch_op.create_index("ix_task_locks_user_id", ["user_id"])
        # Unused (expiry is read with a task or a user) or doubled (uq_task_locks_task_user leads
        # with task_id), and maintained on every lock insert and delete.
        batch_op.drop_index("ix_task_locks_expire_at")
        batch_op.drop_index("ix_task_locks_task_id")


def downgrade() -> None:
    with op.batch_alter_table("task_locks", schema=None) as batch_op:
        batch_op.create_index("ix_task_locks_task_id", ["task_id"])
        batch_op.create_index("ix_task_locks_expire_at", ["expire_at"])
        batch_op.drop_index("ix_task_locks_user_id")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_queue_score")
        batch_op.drop_index("ix_tasks_queue")
        batch_op.create_index("ix_tasks_project_queue_score", ["project_id", "is_labeled", "prediction_score", "id"])
        batch_op.create_index("ix_tasks_project_labeled", ["project_id", "is_labeled", "id"])
