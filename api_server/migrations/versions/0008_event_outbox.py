"""an outbox for events, and deliveries claimed by the delivery engine

`event_outbox` holds what services and the labeling loop's functions published, written in the
same transaction as the change (api_server/events.py); the delivery engine fans each row out to
the subscribers (webhooks, export storages, ML triggers) off the request path and deletes it.
`kubelabel_submit_checked` (0005) no longer hands a submission someone listens for back to the
services: it writes it and its events (`ANNOTATION_CREATED`, and `TASK_COMPLETED` when the
submission completed the task) into the outbox, and answers `published` instead of `ok`.

Deliveries are claimed by the engine itself (api_server/webhooks/engine.py), many per round
trip: `task_id` keeps one task's deliveries to a webhook in order, `locked_until` is a claim's
lease, and `webhooks.backoff_until` holds back a failing endpoint without holding back others.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 05:40:00
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_PENDING = sa.text("status = 'pending'")

# 0005's function: a submission someone listens for is written too, with its events in the outbox.
SUBMIT_CHECKED = """
CREATE OR REPLACE FUNCTION kubelabel_submit_checked(
    p_task bigint, p_user bigint, p_admin boolean, p_allowed text[], p_listening boolean,
    p_expect_project bigint, p_expect_rules text,
    p_result jsonb, p_was_cancelled boolean, p_ground_truth boolean, p_lead_time double precision,
    p_parent_prediction bigint, p_parent_annotation bigint, p_import_id bigint, p_last_action text,
    p_draft_created_at timestamptz, p_now timestamptz, p_legal text[]
) RETURNS TABLE (
    status text, member_role text, rules text, label_config text, show_skip_button boolean,
    enable_empty_annotation boolean,
    -- the annotation written (status ok or published); on a refusal only project_id, the task's project
    id bigint, task_id bigint, project_id integer, completed_by_id integer, result jsonb, was_cancelled boolean,
    ground_truth boolean, lead_time double precision, review_status varchar, draft_created_at timestamptz,
    parent_prediction_id bigint, parent_annotation_id bigint, last_action varchar, updated_by_id integer,
    import_id bigint, bulk_created boolean, created_at timestamptz, updated_at timestamptz
) LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_project integer;
    v_role text;
    v_rules text;
    v_config text;
    v_skip boolean;
    v_empty boolean;
    a annotations%ROWTYPE;
    v_refs jsonb;
BEGIN
    SELECT t.project_id, m.role, p.label_config, p.show_skip_button, p.enable_empty_annotation,
           md5(p.label_config) || ':' || p.show_skip_button::text || ':' || p.enable_empty_annotation::text
      INTO v_project, v_role, v_config, v_skip, v_empty, v_rules
      FROM tasks t JOIN projects p ON p.id = t.project_id
      LEFT JOIN project_members m ON m.project_id = t.project_id AND m.user_id = p_user
     WHERE t.id = p_task;
    IF NOT FOUND THEN
        status := 'missing';
        RETURN NEXT;
        RETURN;
    END IF;
    IF p_admin THEN
        v_role := 'admin';
    END IF;
    status := CASE
        WHEN v_project IS DISTINCT FROM p_expect_project OR v_rules IS DISTINCT FROM p_expect_rules THEN 'stale'
        WHEN v_role IS NULL OR NOT v_role = ANY(p_allowed) THEN 'forbidden'
        ELSE 'ok'
    END;
    IF status <> 'ok' THEN
        member_role := v_role;
        rules := v_rules;
        label_config := v_config;
        show_skip_button := v_skip;
        enable_empty_annotation := v_empty;
        project_id := v_project;
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT s.* INTO a FROM kubelabel_submit(
        p_task, v_project, p_user, p_user, p_result, p_was_cancelled, p_ground_truth, p_lead_time,
        p_parent_prediction, p_parent_annotation, p_import_id, p_last_action, p_draft_created_at, p_now, p_legal
    ) s;
    IF p_listening THEN
        -- As the services publish them (api_server/events.py: rows with their values as written): the
        -- task completed first (a move into completed or accepted from another state), then the annotation.
        v_refs := (SELECT jsonb_build_object('$row', 'tasks', 'id', p_task, 'values', to_jsonb(x))
                     FROM tasks x WHERE x.id = p_task);
        INSERT INTO event_outbox (project_id, action, objects, created_at)
        SELECT v_project, 'TASK_COMPLETED', jsonb_build_object('task', v_refs), p_now
          FROM task_transitions x
         WHERE x.task_id = p_task AND x.created_at = p_now
           AND x.comment = 'annotation ' || a.id || ' ' || CASE WHEN p_was_cancelled THEN 'skipped' ELSE 'submitted' END
           AND x.to_state IN ('completed', 'accepted') AND x.from_state NOT IN ('completed', 'accepted');
        INSERT INTO event_outbox (project_id, action, objects, created_at)
        VALUES (v_project, 'ANNOTATION_CREATED', jsonb_build_object(
            'annotation', jsonb_build_object('$row', 'annotation_public', 'id', a.id, 'values',
                to_jsonb(a) || jsonb_build_object('$username', (SELECT u.username FROM users u WHERE u.id = p_user))),
            'task', v_refs), p_now);
    END IF;
    RETURN QUERY SELECT CASE WHEN p_listening THEN 'published' ELSE 'ok' END, v_role, v_rules,
        NULL::text, NULL::boolean, NULL::boolean, (a).*;
END
$fn$;
"""


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
        op.execute(SUBMIT_CHECKED)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        path = Path(__file__).with_name("0005_submit_checks_in_one_call.py")
        spec = importlib.util.spec_from_file_location("revision_0005", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        op.execute(module.SUBMIT_CHECKED)
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("backoff_until")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_task_order")
        batch_op.drop_index("ix_webhook_deliveries_due")
        batch_op.drop_column("locked_until")
        batch_op.drop_column("task_id")
    op.drop_table("event_outbox")
