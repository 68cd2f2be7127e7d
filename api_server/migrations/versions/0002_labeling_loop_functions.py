"""labeling loop functions (PostgreSQL)

The labeling loop's two calls as one database round trip each on PostgreSQL:
`kubelabel_next_task` and `kubelabel_submit` (see api_server/workflow/pg_loop.py). They
follow, statement for statement, the rules of workflow/service.py, workflow/repository.py,
annotations/service.py and tasks/counters.py; what they may not decide alone (the state
machine's table, the roles that may label) comes in as parameters from that Python code.
Whatever they do not handle they refuse before writing, and the Python path takes over.
A change to those rules or to the tables they read is a new migration (CREATE OR REPLACE);
the API test suite runs on PostgreSQL through these functions and catches a drift.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 01:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# A task the user may take at p_now (workflow/repository._available, without own skips):
# open, a free slot (annotations that count + others' live locks < overlap), not theirs yet.
_AVAILABLE = """
    t.project_id = p_project AND t.is_labeled = false
    AND (SELECT count(*) FROM annotations a
          WHERE a.task_id = t.id AND (a.review_status IS NULL OR a.review_status <> 'rejected')
            AND (v_skips_count OR a.was_cancelled = false))
      + (SELECT count(*) FROM task_locks l
          WHERE l.task_id = t.id AND l.expire_at > p_now AND l.user_id <> p_user) < t.overlap
    AND (SELECT count(*) FROM annotations a WHERE a.task_id = t.id AND a.completed_by_id = p_user) = 0
"""

_TASK_COLUMNS = """t.id, t.project_id, t.inner_id, t.data, t.meta, t.state, t.is_labeled, t.overlap,
    t.total_annotations, t.cancelled_annotations, t.total_predictions, t.prediction_score,
    t.file_upload_id, t.updated_by_id, t.created_at, t.updated_at"""

NEXT_TASK = f"""
CREATE OR REPLACE FUNCTION kubelabel_next_task(
    p_project bigint, p_user bigint, p_admin boolean, p_roles text[], p_now timestamptz,
    p_default_ttl double precision, p_legal text[]
) RETURNS TABLE (
    status text, member_role text, fresh boolean,
    id bigint, project_id integer, inner_id bigint, data jsonb, meta jsonb, state varchar, is_labeled boolean,
    overlap integer, total_annotations integer, cancelled_annotations integer, total_predictions integer,
    prediction_score double precision, file_upload_id integer, updated_by_id integer,
    created_at timestamptz, updated_at timestamptz
) LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_role text;
    v_sampling text;
    v_skip_queue text;
    v_ttl interval;
    v_skips_count boolean;
    v_task bigint;
    v_state text;
    v_lock bigint;
    v_low bigint;
    v_high bigint;
    v_start bigint;
BEGIN
    SELECT m.role, p.sampling, p.skip_queue, make_interval(secs => COALESCE(NULLIF(p.task_lock_ttl, 0), p_default_ttl))
      INTO v_role, v_sampling, v_skip_queue, v_ttl
      FROM projects p LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = p_user
     WHERE p.id = p_project;
    IF NOT FOUND THEN
        status := 'missing';
        member_role := NULL;
        RETURN NEXT;
        RETURN;
    END IF;
    IF p_admin THEN
        v_role := 'admin';
    END IF;
    IF v_role IS NULL OR NOT v_role = ANY(p_roles) THEN
        status := 'forbidden';
        member_role := v_role;
        RETURN NEXT;
        RETURN;
    END IF;
    IF v_skip_queue = 'REQUEUE_FOR_ME' THEN  -- hands out the caller's own skips: the Python path
        status := 'general';
        member_role := v_role;
        RETURN NEXT;
        RETURN;
    END IF;
    v_skips_count := v_skip_queue = 'IGNORE_SKIPPED';

    -- The caller's own task, fetched again (a reload, a second tab): same task, lock extended.
    SELECT l.id, l.task_id INTO v_lock, v_task
      FROM task_locks l JOIN tasks t ON t.id = l.task_id
     WHERE l.user_id = p_user AND t.project_id = p_project AND l.expire_at > p_now
       AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.task_id = l.task_id AND a.completed_by_id = p_user)
     ORDER BY l.id LIMIT 1;
    IF FOUND THEN
        UPDATE task_locks SET expire_at = p_now + v_ttl WHERE task_locks.id = v_lock;
        RETURN QUERY SELECT 'ok'::text, v_role, false, {_TASK_COLUMNS} FROM tasks t WHERE t.id = v_task;
        RETURN;
    END IF;

    IF v_sampling = 'Uniform sampling' THEN
        SELECT min(t.id), max(t.id) INTO v_low, v_high FROM tasks t WHERE t.project_id = p_project;
        IF v_low IS NULL THEN
            RETURN;
        END IF;
        v_start := v_low + floor(random() * (v_high - v_low + 1))::bigint;
    END IF;
    -- Candidates found taken meanwhile are skipped by the next query's fresh snapshot (service._claim).
    FOR attempt IN 1..50 LOOP
        v_task := NULL;
        IF v_sampling = 'Uncertainty sampling' THEN
            SELECT t.id, t.state INTO v_task, v_state FROM tasks t WHERE {_AVAILABLE}
             ORDER BY t.prediction_score ASC NULLS LAST, t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED;
        ELSIF v_start IS NOT NULL THEN
            SELECT t.id, t.state INTO v_task, v_state FROM tasks t WHERE {_AVAILABLE} AND t.id >= v_start
             ORDER BY t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED;
            IF v_task IS NULL THEN
                SELECT t.id, t.state INTO v_task, v_state FROM tasks t WHERE {_AVAILABLE} AND t.id < v_start
                 ORDER BY t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED;
            END IF;
        ELSE
            SELECT t.id, t.state INTO v_task, v_state FROM tasks t WHERE {_AVAILABLE}
             ORDER BY t.inner_id, t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED;
        END IF;
        IF v_task IS NULL THEN
            RETURN;
        END IF;
        -- A new statement, so a new snapshot: re-check the candidate while locking it for the user.
        INSERT INTO task_locks (task_id, user_id, expire_at)
        SELECT v_task, p_user, p_now + v_ttl
         WHERE EXISTS (SELECT 1 FROM tasks t WHERE t.id = v_task AND {_AVAILABLE})
        ON CONFLICT (task_id, user_id) DO UPDATE SET expire_at = EXCLUDED.expire_at
        RETURNING task_locks.id INTO v_lock;
        IF FOUND THEN
            IF v_state <> 'in_progress' THEN
                IF NOT (v_state || '>in_progress') = ANY(p_legal) THEN
                    RAISE EXCEPTION 'task %: % -> in_progress', v_task, v_state USING ERRCODE = 'KL409';
                END IF;
                UPDATE tasks SET state = 'in_progress', updated_at = p_now WHERE tasks.id = v_task;
                INSERT INTO task_transitions (task_id, from_state, to_state, user_id, comment, created_at)
                VALUES (v_task, v_state, 'in_progress', p_user, 'handed out by /next', p_now);
            END IF;
            RETURN QUERY SELECT 'ok'::text, v_role, v_state = 'new', {_TASK_COLUMNS} FROM tasks t WHERE t.id = v_task;
            RETURN;
        END IF;
    END LOOP;
END
$fn$;
"""

SUBMIT = """
CREATE OR REPLACE FUNCTION kubelabel_submit(
    p_task bigint, p_project bigint, p_author bigint, p_actor bigint, p_result jsonb, p_was_cancelled boolean,
    p_ground_truth boolean, p_lead_time double precision, p_parent_prediction bigint, p_parent_annotation bigint,
    p_import_id bigint, p_last_action text, p_draft_created_at timestamptz, p_now timestamptz, p_legal text[]
) RETURNS SETOF annotations LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    t tasks%ROWTYPE;
    a annotations%ROWTYPE;
    v_skips_count boolean;
    v_review_required boolean;
    v_drafted timestamptz;
    v_event text := CASE WHEN p_was_cancelled THEN 'skipped' ELSE 'submitted' END;
    v_total integer;
    v_cancelled integer;
    v_labeling integer;
    v_counted integer;
    v_accepted integer;
    v_locks integer;
    v_busy boolean;
    v_target text;
BEGIN
    -- The task row first: the state decision below reads what it writes over.
    SELECT * INTO t FROM tasks WHERE tasks.id = p_task FOR UPDATE;
    IF NOT FOUND OR t.project_id <> p_project THEN
        RAISE EXCEPTION 'task % is not in project %', p_task, p_project USING ERRCODE = 'KL404';
    END IF;
    SELECT p.skip_queue = 'IGNORE_SKIPPED', p.review_required INTO v_skips_count, v_review_required
      FROM projects p WHERE p.id = p_project;

    WITH taken AS (
        DELETE FROM drafts d
         WHERE d.task_id = p_task AND d.user_id = p_author AND d.annotation_id IS NULL
        RETURNING d.created_at
    ) SELECT min(taken.created_at) INTO v_drafted FROM taken;
    INSERT INTO annotations (
        task_id, project_id, completed_by_id, result, was_cancelled, ground_truth, lead_time, draft_created_at,
        parent_prediction_id, parent_annotation_id, last_action, updated_by_id, import_id, bulk_created,
        created_at, updated_at
    ) VALUES (
        p_task, p_project, p_author, p_result, p_was_cancelled, p_ground_truth, p_lead_time,
        COALESCE(v_drafted, p_draft_created_at), p_parent_prediction, p_parent_annotation, p_last_action, p_actor,
        p_import_id, false, p_now, p_now
    ) RETURNING * INTO a;
    -- The author's lock on the task, and any of their locks that expired.
    DELETE FROM task_locks l WHERE l.user_id = p_author AND (l.task_id = p_task OR l.expire_at <= p_now);

    -- One pass over the task's annotations: its counters (tasks/counters.py) and the slots that
    -- decide where it goes (workflow/service.settle); then one UPDATE writes both.
    SELECT count(*) FILTER (WHERE NOT x.was_cancelled),
           count(*) FILTER (WHERE x.was_cancelled),
           count(*) FILTER (WHERE NOT x.was_cancelled AND x.review_status IS DISTINCT FROM 'rejected'
                              AND (NOT v_review_required OR x.review_status = 'accepted')),
           count(*) FILTER (WHERE x.review_status IS DISTINCT FROM 'rejected'
                              AND (v_skips_count OR NOT x.was_cancelled)),
           count(*) FILTER (WHERE x.review_status = 'accepted' AND (v_skips_count OR NOT x.was_cancelled))
      INTO v_total, v_cancelled, v_labeling, v_counted, v_accepted
      FROM annotations x WHERE x.task_id = p_task;
    SELECT count(*) INTO v_locks FROM task_locks l WHERE l.task_id = p_task AND l.expire_at > p_now;
    v_busy := v_counted > 0 OR v_locks > 0;
    IF v_counted >= t.overlap THEN
        v_target := CASE WHEN v_counted > 0 AND v_accepted = v_counted THEN 'accepted' ELSE 'completed' END;
    ELSIF v_event = 'skipped' THEN
        IF t.state = 'rejected' AND NOT v_busy THEN
            v_target := 'rejected';
        ELSIF v_busy OR t.state IN ('completed', 'accepted') THEN
            v_target := 'in_progress';
        ELSE
            v_target := 'skipped';
        END IF;
    ELSE
        v_target := 'in_progress';
    END IF;
    IF v_target <> t.state AND NOT (t.state || '>' || v_target) = ANY(p_legal) THEN
        RAISE EXCEPTION 'task %: % -> %', p_task, t.state, v_target USING ERRCODE = 'KL409';
    END IF;
    UPDATE tasks SET
        total_annotations = v_total,
        cancelled_annotations = v_cancelled,
        total_predictions = (SELECT count(*) FROM predictions x WHERE x.task_id = p_task),
        prediction_score = (SELECT x.score FROM predictions x WHERE x.task_id = p_task
                             ORDER BY x.created_at DESC, x.id DESC LIMIT 1),
        is_labeled = v_labeling >= t.overlap AND v_labeling > 0,
        state = v_target,
        updated_at = p_now
     WHERE tasks.id = p_task;
    IF v_target <> t.state THEN
        INSERT INTO task_transitions (task_id, from_state, to_state, user_id, comment, created_at)
        VALUES (p_task, t.state, v_target, p_actor, 'annotation ' || a.id || ' ' || v_event, p_now);
    END IF;
    RETURN NEXT a;
END
$fn$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(NEXT_TASK)
    op.execute(SUBMIT)


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
