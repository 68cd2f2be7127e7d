-- kubelabel_submit_checked, version 4 (migration 0013).
-- Version 3, and when asked (`p_task_row`) it also answers the task's row as the submission left it
-- (`task_row`): the statement that calls it then writes the submission's webhook deliveries itself,
-- from that row and the annotation, with no outbox row (api_server/webhooks/bulk.py). The outbox
-- rows it writes name their task (`task_id`, new in migration 0013).
CREATE OR REPLACE FUNCTION kubelabel_submit_checked(
    p_task bigint, p_user bigint, p_admin boolean, p_allowed text[], p_heard text[],
    p_expect_project bigint, p_expect_rules text,
    p_result jsonb, p_was_cancelled boolean, p_ground_truth boolean, p_lead_time double precision,
    p_parent_prediction bigint, p_parent_annotation bigint, p_import_id bigint, p_last_action text,
    p_draft_created_at timestamptz, p_now timestamptz, p_legal text[], p_task_row boolean
) RETURNS TABLE (
    status text, member_role text, rules text, label_config text, show_skip_button boolean,
    enable_empty_annotation boolean,
    -- the annotation written (status ok or published); on a refusal only project_id, the task's project
    id bigint, task_id bigint, project_id integer, completed_by_id integer, result jsonb, was_cancelled boolean,
    ground_truth boolean, lead_time double precision, review_status varchar, draft_created_at timestamptz,
    parent_prediction_id bigint, parent_annotation_id bigint, last_action varchar, updated_by_id integer,
    import_id bigint, bulk_created boolean, created_at timestamptz, updated_at timestamptz,
    -- the task's row after the submission (status ok or published, when asked)
    task_row tasks
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
    IF cardinality(p_heard) > 0 THEN
        -- As the services publish them (api_server/events.py: rows with their values as written): the
        -- task completed first (a move into completed or accepted from another state), then the annotation.
        v_refs := (SELECT jsonb_build_object('$row', 'tasks', 'id', p_task, 'values', to_jsonb(x))
                     FROM tasks x WHERE x.id = p_task);
        INSERT INTO event_outbox (project_id, action, objects, created_at, task_id)
        SELECT v_project, 'TASK_COMPLETED', jsonb_build_object('task', v_refs), p_now, p_task
         WHERE 'TASK_COMPLETED' = ANY(p_heard) AND EXISTS (SELECT 1
          FROM task_transitions x
         WHERE x.task_id = p_task AND x.created_at = p_now
           AND x.comment = 'annotation ' || a.id || ' ' || CASE WHEN p_was_cancelled THEN 'skipped' ELSE 'submitted' END
           AND x.to_state IN ('completed', 'accepted') AND x.from_state NOT IN ('completed', 'accepted'));
        INSERT INTO event_outbox (project_id, action, objects, created_at, task_id)
        SELECT v_project, 'ANNOTATION_CREATED', jsonb_build_object(
            'annotation', jsonb_build_object('$row', 'annotation_public', 'id', a.id, 'values',
                to_jsonb(a) || jsonb_build_object('$username', (SELECT u.username FROM users u WHERE u.id = p_user))),
            'task', v_refs), p_now, p_task
         WHERE 'ANNOTATION_CREATED' = ANY(p_heard);
    END IF;
    RETURN QUERY SELECT CASE WHEN cardinality(p_heard) > 0 THEN 'published' ELSE 'ok' END, v_role, v_rules,
        NULL::text, NULL::boolean, NULL::boolean, (a).*,
        CASE WHEN p_task_row THEN (SELECT x FROM tasks x WHERE x.id = p_task) END;
END
$fn$;
