-- kubelabel_next_task, version 2 (migration 0004).
-- Version 1 with one change: `fresh` says the caller has no drafts on the task (so the caller
-- fetches drafts only when there are some), where version 1 said the task was new.
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
        RETURN QUERY SELECT 'ok'::text, v_role,
    NOT EXISTS (SELECT 1 FROM drafts d WHERE d.task_id = v_task AND d.user_id = p_user), t.id, t.project_id, t.inner_id, t.data, t.meta, t.state, t.is_labeled, t.overlap,
    t.total_annotations, t.cancelled_annotations, t.total_predictions, t.prediction_score,
    t.file_upload_id, t.updated_by_id, t.created_at, t.updated_at FROM tasks t WHERE t.id = v_task;
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
            SELECT t.id, t.state INTO v_task, v_state FROM tasks t WHERE 
    t.project_id = p_project AND t.is_labeled = false
    AND (SELECT count(*) FROM annotations a
          WHERE a.task_id = t.id AND (a.review_status IS NULL OR a.review_status <> 'rejected')
            AND (v_skips_count OR a.was_cancelled = false))
      + (SELECT count(*) FROM task_locks l
          WHERE l.task_id = t.id AND l.expire_at > p_now AND l.user_id <> p_user) < t.overlap
    AND (SELECT count(*) FROM annotations a WHERE a.task_id = t.id AND a.completed_by_id = p_user) = 0

             ORDER BY t.prediction_score ASC NULLS LAST, t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED;
        ELSIF v_start IS NOT NULL THEN
            SELECT t.id, t.state INTO v_task, v_state FROM tasks t WHERE 
    t.project_id = p_project AND t.is_labeled = false
    AND (SELECT count(*) FROM annotations a
          WHERE a.task_id = t.id AND (a.review_status IS NULL OR a.review_status <> 'rejected')
            AND (v_skips_count OR a.was_cancelled = false))
      + (SELECT count(*) FROM task_locks l
          WHERE l.task_id = t.id AND l.expire_at > p_now AND l.user_id <> p_user) < t.overlap
    AND (SELECT count(*) FROM annotations a WHERE a.task_id = t.id AND a.completed_by_id = p_user) = 0
 AND t.id >= v_start
             ORDER BY t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED;
            IF v_task IS NULL THEN
                SELECT t.id, t.state INTO v_task, v_state FROM tasks t WHERE 
    t.project_id = p_project AND t.is_labeled = false
    AND (SELECT count(*) FROM annotations a
          WHERE a.task_id = t.id AND (a.review_status IS NULL OR a.review_status <> 'rejected')
            AND (v_skips_count OR a.was_cancelled = false))
      + (SELECT count(*) FROM task_locks l
          WHERE l.task_id = t.id AND l.expire_at > p_now AND l.user_id <> p_user) < t.overlap
    AND (SELECT count(*) FROM annotations a WHERE a.task_id = t.id AND a.completed_by_id = p_user) = 0
 AND t.id < v_start
                 ORDER BY t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED;
            END IF;
        ELSE
            SELECT t.id, t.state INTO v_task, v_state FROM tasks t WHERE 
    t.project_id = p_project AND t.is_labeled = false
    AND (SELECT count(*) FROM annotations a
          WHERE a.task_id = t.id AND (a.review_status IS NULL OR a.review_status <> 'rejected')
            AND (v_skips_count OR a.was_cancelled = false))
      + (SELECT count(*) FROM task_locks l
          WHERE l.task_id = t.id AND l.expire_at > p_now AND l.user_id <> p_user) < t.overlap
    AND (SELECT count(*) FROM annotations a WHERE a.task_id = t.id AND a.completed_by_id = p_user) = 0

             ORDER BY t.inner_id, t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED;
        END IF;
        IF v_task IS NULL THEN
            RETURN;
        END IF;
        -- A new statement, so a new snapshot: re-check the candidate while locking it for the user.
        INSERT INTO task_locks (task_id, user_id, expire_at)
        SELECT v_task, p_user, p_now + v_ttl
         WHERE EXISTS (SELECT 1 FROM tasks t WHERE t.id = v_task AND 
    t.project_id = p_project AND t.is_labeled = false
    AND (SELECT count(*) FROM annotations a
          WHERE a.task_id = t.id AND (a.review_status IS NULL OR a.review_status <> 'rejected')
            AND (v_skips_count OR a.was_cancelled = false))
      + (SELECT count(*) FROM task_locks l
          WHERE l.task_id = t.id AND l.expire_at > p_now AND l.user_id <> p_user) < t.overlap
    AND (SELECT count(*) FROM annotations a WHERE a.task_id = t.id AND a.completed_by_id = p_user) = 0
)
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
            RETURN QUERY SELECT 'ok'::text, v_role,
    NOT EXISTS (SELECT 1 FROM drafts d WHERE d.task_id = v_task AND d.user_id = p_user), t.id, t.project_id, t.inner_id, t.data, t.meta, t.state, t.is_labeled, t.overlap,
    t.total_annotations, t.cancelled_annotations, t.total_predictions, t.prediction_score,
    t.file_upload_id, t.updated_by_id, t.created_at, t.updated_at FROM tasks t WHERE t.id = v_task;
            RETURN;
        END IF;
    END LOOP;
END
$fn$;
