"""/next tells whether the caller has drafts on the task it hands out

`kubelabel_next_task` returned `fresh` = "the task was new", and the caller then asked for
its drafts on every task it was not the first to take: with overlap 2, half of all /next
calls made a second round trip that found nothing. `fresh` now says what the caller needs:
no drafts of theirs on the task (one index probe inside the function). Otherwise the
function is 0002's, unchanged.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 04:03:00
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# 0002's function with one change: where it answers a task, `fresh` is "no drafts of the caller
# on it" instead of "the task was new" (the reload path said false, a claim `v_state = 'new'`).
_ANSWERS = (
    "RETURN QUERY SELECT 'ok'::text, v_role, false, ",
    "RETURN QUERY SELECT 'ok'::text, v_role, v_state = 'new', ",
)
_NO_DRAFTS = (
    "RETURN QUERY SELECT 'ok'::text, v_role,\n"
    "    NOT EXISTS (SELECT 1 FROM drafts d WHERE d.task_id = v_task AND d.user_id = p_user), "
)


def next_task_sql() -> str:
    sql = _revision_0002().NEXT_TASK
    for answer in _ANSWERS:
        if sql.count(answer) != 1:
            raise RuntimeError(f"revision 0002's kubelabel_next_task no longer has {answer!r} once")
        sql = sql.replace(answer, _NO_DRAFTS)
    return sql


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(next_task_sql())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_revision_0002().NEXT_TASK)


def _revision_0002() -> ModuleType:
    path = Path(__file__).with_name("0002_labeling_loop_functions.py")
    spec = importlib.util.spec_from_file_location("revision_0002", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
