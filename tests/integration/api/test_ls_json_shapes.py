"""Every path that writes Label Studio's task and annotation JSON follows the one field table.

The same rows (every column set, so a key a path leaves out or fills from the wrong column shows)
go out through the annotation API, the tasks API, the JSON export (SQL), a webhook payload and an
export-storage object; each must carry exactly the keys api_server.common.ls_json gives its path,
and the keys they share must hold the same values. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from api_server.common import ls_json
from api_server.db.models import Annotation, FileUpload, Prediction, Task, User
from api_server.storages.bucket_export import serialize_task
from api_server.webhooks import payloads

T0 = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
TS_KEYS = {f.key for f in (*ls_json.ANNOTATION, *ls_json.TASK) if f.kind == "ts"}
CHOICE = {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}


def _rows(live_server, project_id: int) -> tuple[int, list[int]]:
    """One task with a reviewed annotation (every column set) and a skipped one (nulls), a prediction
    and a file upload; counters as the services would leave them."""
    with live_server.session_factory() as session:
        admin = session.scalars(select(User).where(User.username == "admin")).one()
        upload = FileUpload(project_id=project_id, user_id=admin.id, file="upload/tasks.json", size=10)
        session.add(upload)
        session.flush()
        task = Task(
            project_id=project_id,
            inner_id=3,
            data={"text": "Ann went to Paris", "n": 7},
            meta={"source": "bucket", "page": 2},
            state="accepted",
            is_labeled=True,
            overlap=2,
            total_annotations=1,
            cancelled_annotations=1,
            total_predictions=1,
            file_upload_id=upload.id,
            updated_by_id=admin.id,
            created_at=T0,
            updated_at=T0 + timedelta(seconds=1),
        )
        session.add(task)
        session.flush()
        prediction = Prediction(task_id=task.id, project_id=project_id, result=[CHOICE], score=0.25, model_version="v1")
        session.add(prediction)
        session.flush()
        reviewed = Annotation(
            task_id=task.id,
            project_id=project_id,
            completed_by_id=admin.id,
            result=[CHOICE, {**CHOICE, "id": "second"}],
            was_cancelled=False,
            ground_truth=True,
            lead_time=12.5,
            review_status="accepted",
            draft_created_at=T0 - timedelta(minutes=5),
            parent_prediction_id=prediction.id,
            last_action="accepted",
            updated_by_id=admin.id,
            import_id=77,
            bulk_created=True,
            created_at=T0 + timedelta(seconds=2),
            updated_at=T0 + timedelta(seconds=3, microseconds=5),
        )
        session.add(reviewed)
        session.flush()
        skipped = Annotation(
            task_id=task.id,
            project_id=project_id,
            completed_by_id=admin.id,
            result=[],
            was_cancelled=True,
            parent_annotation_id=reviewed.id,
            created_at=T0 + timedelta(seconds=4),
            updated_at=T0 + timedelta(seconds=4),
        )
        session.add(skipped)
        session.commit()
        return task.id, [reviewed.id, skipped.id]


def _roundtrip(value: Any) -> Any:
    """As the receiver or the bucket reads it (the writers' own JSON encoding)."""
    return json.loads(json.dumps(value, default=str))


def _paths(api, live_server, project_id: int, task_id: int, annotation_ids: list[int]) -> dict[str, dict[str, Any]]:
    """The task (annotations nested where the path nests them) and its annotations, as each path writes them."""
    out: dict[str, dict[str, Any]] = {}

    r = api.get(f"/api/tasks/{task_id}/")
    assert r.status_code == 200, r.text
    task = r.json()
    out[ls_json.TASKS] = {"task": task, "annotations": task["annotations"]}

    annotations = []
    for aid in annotation_ids:
        r = api.get(f"/api/annotations/{aid}/")
        assert r.status_code == 200, r.text
        annotations.append(r.json())
    out[ls_json.API] = {"task": None, "annotations": annotations}

    r = api.get(f"/api/projects/{project_id}/export", params={"exportType": "JSON"})
    assert r.status_code == 200, r.text
    [exported] = r.json()
    out[ls_json.EXPORT] = {"task": exported, "annotations": exported["annotations"]}

    with live_server.session_factory() as session:
        # The bulk event's payload: annotations loaded by id range, their tasks beside them.
        payload = payloads.build(
            session,
            project_id,
            "ANNOTATIONS_CREATED",
            {"annotation_id_ranges": [[min(annotation_ids), max(annotation_ids)]]},
            max_objects=100,
        )
        payload = _roundtrip(payload)
        [hooked_task] = payload["task"]
        out[ls_json.WEBHOOK] = {"task": hooked_task, "annotations": payload["annotation"]}

        row = session.get(Task, task_id)
        rows = list(session.scalars(select(Annotation).where(Annotation.task_id == task_id).order_by(Annotation.id)))
        stored = _roundtrip(serialize_task(row, rows))
        out[ls_json.STORAGE] = {"task": stored, "annotations": stored["annotations"]}
    return out


def _same(key: str, value: Any) -> Any:
    """A value compared across paths: timestamps as instants (their text differs by transport)."""
    if key in TS_KEYS and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def _assert_shared_values(objects: dict[str, dict[str, Any]], what: str, skip: set[str] = frozenset()) -> None:
    by_key: dict[str, dict[str, Any]] = {}
    for path, obj in objects.items():
        for key, value in obj.items():
            if key not in skip:
                by_key.setdefault(key, {})[path] = _same(key, value)
    for key, values in by_key.items():
        assert len({json.dumps(v, sort_keys=True, default=str) for v in values.values()}) == 1, (
            f"{what}: {key!r} differs between paths: {values}"
        )


def test_every_path_writes_the_table_keys_with_the_same_values(api, live_server, text_project):
    project_id = text_project["id"]
    task_id, annotation_ids = _rows(live_server, project_id)
    paths = _paths(api, live_server, project_id, task_id, annotation_ids)
    assert set(paths) == ls_json.PATHS

    for path, got in paths.items():
        assert [a["id"] for a in got["annotations"]] == annotation_ids, path
        for a in got["annotations"]:
            assert set(a) == set(ls_json.keys_of(ls_json.ANNOTATION, path)), (
                f"{path} annotation keys: extra {set(a) - set(ls_json.keys_of(ls_json.ANNOTATION, path))}, "
                f"missing {set(ls_json.keys_of(ls_json.ANNOTATION, path)) - set(a)}"
            )
        if got["task"] is not None:
            want = set(ls_json.keys_of((*ls_json.TASK, *ls_json.TASK_NESTED), path))
            assert set(got["task"]) == want, (
                f"{path} task keys: extra {set(got['task']) - want}, missing {want - set(got['task'])}"
            )

    for i, aid in enumerate(annotation_ids):
        _assert_shared_values({p: got["annotations"][i] for p, got in paths.items()}, f"annotation {aid}")
    tasks = {p: got["task"] for p, got in paths.items() if got["task"] is not None}
    # Nested lists are compared item by item above; storage objects carry no predictions (ls_json.TASK_NESTED).
    _assert_shared_values(tasks, f"task {task_id}", skip={"annotations", "predictions"})
    assert tasks[ls_json.STORAGE]["predictions"] == []
    assert [p["id"] for p in tasks[ls_json.EXPORT]["predictions"]] == [
        p["id"] for p in tasks[ls_json.TASKS]["predictions"]
    ]

    # The values themselves, so that a path agreeing with another on a wrong one still fails.
    reviewed, skipped = (paths[ls_json.EXPORT]["annotations"][i] for i in (0, 1))
    assert (reviewed["state"], skipped["state"]) == ("accepted", "skipped")
    assert (reviewed["result_count"], skipped["result_count"]) == (2, 0)
    assert reviewed["prediction"] == {} and paths[ls_json.STORAGE]["annotations"][1]["result_count"] == 0
    assert (reviewed["import_id"], reviewed["bulk_created"], skipped["bulk_created"]) == (77, True, False)
    assert reviewed["lead_time"] == 12.5 and reviewed["review_status"] == "accepted"
    assert skipped["parent_annotation"] == reviewed["id"] and reviewed["parent_prediction"] is not None
    assert _same("updated_at", reviewed["updated_at"]) == T0 + timedelta(seconds=3, microseconds=5)
    task = tasks[ls_json.EXPORT]
    assert task["data"] == {"text": "Ann went to Paris", "n": 7} and task["meta"] == {"source": "bucket", "page": 2}
    assert task["file_upload"] is not None and task["state"] == "accepted" and task["overlap"] == 2
    assert paths[ls_json.API]["annotations"][0]["created_username"] == "admin"
