-- kubelabel_submit, version 1 (migration 0002).
-- A submission or a skip, as annotations/service.create writes it: the annotation (taking the
-- author's drafts on the task), the author's lock released, the task's counters
-- (tasks/counters.py) and its state and history (workflow/service.settle). Called by
-- kubelabel_submit_checked.
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
