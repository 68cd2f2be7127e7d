"""The next-task queue (/api/projects/{id}/next): overlap, locks, skips, sampling."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from api_server.db.base import utcnow
from api_server.db.models import TaskLock
from tests.conftest import TEXT_CONFIG
from tests.support.labeling import choice, member, project_with_tasks


def _next(client, project_id):
    return client.get(f"/api/projects/{project_id}/next")


def _submit(client, task_id, value="Positive"):
    r = client.post(f"/api/tasks/{task_id}/annotations/", json={"result": choice(value)})
    assert r.status_code == 201, r.text
    return r.json()


def test_sequential_idempotent_refetch_and_no_more_tasks(api, live_server):
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 2)
    pid = project["id"]
    with member(api, live_server, pid, "annotator", "ann") as ann:
        first = _next(ann, pid)
        assert first.status_code == 200, first.text
        assert first.json()["id"] == tasks[0] and first.json()["state"] == "in_progress"
        # Fetching again returns the caller's own locked task, not a new one.
        assert _next(ann, pid).json()["id"] == tasks[0]
        _submit(ann, tasks[0])
        assert _next(ann, pid).json()["id"] == tasks[1]
        _submit(ann, tasks[1])
        r = _next(ann, pid)
        assert r.status_code == 404 and r.json()["detail"] == "no more tasks"
    history = api.get(f"/api/tasks/{tasks[0]}/history").json()
    assert [(h["from_state"], h["to_state"]) for h in history] == [("new", "in_progress"), ("in_progress", "completed")]
    assert history[0]["comment"] == "handed out by /next" and history[0]["user"] == ann.user_id


def test_lock_keeps_a_task_from_more_annotators_than_its_overlap(api, live_server):
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 2, overlap=2)
    pid = project["id"]
    with (
        member(api, live_server, pid, "annotator", "a") as a,
        member(api, live_server, pid, "annotator", "b") as b,
        member(api, live_server, pid, "annotator", "c") as c,
    ):
        assert _next(a, pid).json()["id"] == tasks[0]
        assert _next(b, pid).json()["id"] == tasks[0]  # overlap 2: a second annotator may hold it
        assert _next(c, pid).json()["id"] == tasks[1]  # but not a third
        _submit(a, tasks[0])
        _submit(b, tasks[0])
        t = api.get(f"/api/tasks/{tasks[0]}/").json()
        assert t["total_annotations"] == 2 and t["is_labeled"] and t["state"] == "completed"
        # a already did task 0 and c holds task 1 (one of two slots): a gets task 1's second slot.
        assert _next(a, pid).json()["id"] == tasks[1]
        assert _next(b, pid).status_code == 404


def test_never_a_task_the_annotator_already_did(api, live_server):
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 2, overlap=3)
    pid = project["id"]
    with member(api, live_server, pid, "annotator", "a") as a:
        _submit(a, tasks[0])  # annotated without /next
        assert _next(a, pid).json()["id"] == tasks[1]
        _submit(a, tasks[1])
        assert _next(a, pid).status_code == 404


def test_skip_releases_the_lock_and_requeues_for_others(api, live_server):
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 2)
    pid = project["id"]
    with member(api, live_server, pid, "annotator", "a") as a, member(api, live_server, pid, "annotator", "b") as b:
        assert _next(a, pid).json()["id"] == tasks[0]
        r = a.post(f"/api/tasks/{tasks[0]}/annotations/", json={"result": [], "was_cancelled": True})
        assert r.status_code == 201
        assert api.get(f"/api/tasks/{tasks[0]}/").json()["state"] == "skipped"
        # The skipper never sees it again; someone else gets it first (sequential order).
        assert _next(a, pid).json()["id"] == tasks[1]
        assert _next(b, pid).json()["id"] == tasks[0]
        assert api.get(f"/api/tasks/{tasks[0]}/").json()["state"] == "in_progress"
        # The /skip shortcut does the same.
        r = b.post(f"/api/tasks/{tasks[0]}/skip")
        assert r.status_code == 201 and r.json()["was_cancelled"] is True
        assert _next(b, pid).status_code == 404  # a holds task 1, b skipped task 0
    states = [(h["from_state"], h["to_state"]) for h in api.get(f"/api/tasks/{tasks[0]}/history").json()]
    assert states == [
        ("new", "in_progress"),
        ("in_progress", "skipped"),
        ("skipped", "in_progress"),
        ("in_progress", "skipped"),
    ]


def test_requeue_for_me_gives_skipped_tasks_back_last(api, live_server):
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 2, skip_queue="REQUEUE_FOR_ME")
    pid = project["id"]
    with member(api, live_server, pid, "annotator", "a") as a:
        assert _next(a, pid).json()["id"] == tasks[0]
        a.post(f"/api/tasks/{tasks[0]}/skip")
        assert _next(a, pid).json()["id"] == tasks[1]
        _submit(a, tasks[1])
        again = _next(a, pid).json()
        assert again["id"] == tasks[0]
        assert [x["was_cancelled"] for x in again["annotations"]] == [True]


def test_an_expired_lock_frees_the_task(api, live_server):
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 1)
    pid = project["id"]
    with member(api, live_server, pid, "annotator", "a") as a, member(api, live_server, pid, "annotator", "b") as b:
        assert _next(a, pid).json()["id"] == tasks[0]
        assert _next(b, pid).status_code == 404
        with live_server.session_factory() as session:
            session.execute(update(TaskLock).values(expire_at=utcnow() - timedelta(seconds=1)))
            session.commit()
        assert _next(b, pid).json()["id"] == tasks[0]
        # a's lock is gone: a gets nothing (b holds the only slot now).
        assert _next(a, pid).status_code == 404


def test_lock_ttl_comes_from_the_project(api, live_server):
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 1, task_lock_ttl=30)
    with member(api, live_server, project["id"], "annotator", "a") as a:
        before = utcnow()
        assert _next(a, project["id"]).status_code == 200
    with live_server.session_factory() as session:
        (lock,) = session.query(TaskLock).all()
        expire_at = lock.expire_at if lock.expire_at.tzinfo else lock.expire_at.replace(tzinfo=before.tzinfo)
    assert timedelta(seconds=29) <= expire_at - before <= timedelta(seconds=31)


def test_uncertainty_sampling_serves_lowest_score_first(api, live_server):
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 4, sampling="Uncertainty sampling")
    pid = project["id"]
    for task, score in ((tasks[0], 0.9), (tasks[1], 0.2), (tasks[3], 0.5)):
        r = api.post(
            "/api/predictions/", json={"task": task, "result": choice(), "score": score, "model_version": "m1"}
        )
        assert r.status_code == 201, r.text
    order = []
    with member(api, live_server, pid, "annotator", "a") as a:
        while (r := _next(a, pid)).status_code == 200:
            order.append(r.json()["id"])
            if len(order) == 1:
                assert r.json()["predictions"][0]["score"] == 0.2  # pre-annotation comes with the task
            _submit(a, order[-1])
    assert order == [tasks[1], tasks[3], tasks[0], tasks[2]]


def test_uniform_sampling_spreads_annotators(api, live_server):
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 200, sampling="Uniform sampling")
    pid = project["id"]
    handed = []
    for i in range(6):
        with member(api, live_server, pid, "annotator", f"u{i}") as user:
            r = _next(user, pid)
            assert r.status_code == 200
            handed.append(r.json()["id"])
    assert len(set(handed)) == 6 and set(handed) <= set(tasks)
    assert sorted(handed) != tasks[:6]  # not the sequential order (chance of that: ~1e-12)


def test_only_annotators_and_up_may_pull(api, live_server):
    project, _ = project_with_tasks(api, TEXT_CONFIG, 1)
    with member(api, live_server, project["id"], "viewer", "v") as viewer:
        r = _next(viewer, project["id"])
        assert r.status_code == 403 and "annotator role" in r.json()["detail"]
    assert api.get("/api/projects/999/next").status_code == 404


def test_next_task_metric(api, live_server):
    project, _ = project_with_tasks(api, TEXT_CONFIG, 1)
    _next(api, project["id"])
    assert "kubelabel_next_task_duration_seconds_count" in api.get("/metrics").text


def test_ignore_skipped_lets_a_skip_fill_a_slot(api, live_server):
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 2, skip_queue="IGNORE_SKIPPED")
    pid = project["id"]
    with member(api, live_server, pid, "annotator", "a") as a, member(api, live_server, pid, "annotator", "b") as b:
        assert _next(a, pid).json()["id"] == tasks[0]
        a.post(f"/api/tasks/{tasks[0]}/skip")
        # The skip counts as task 0's one annotation: b is not handed task 0.
        assert _next(b, pid).json()["id"] == tasks[1]


def test_next_returns_the_callers_draft(api, live_server):
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 1)
    pid = project["id"]
    with member(api, live_server, pid, "annotator", "a") as a:
        assert _next(a, pid).json()["drafts"] == []
        a.post(f"/api/tasks/{tasks[0]}/drafts", json={"result": choice("Neutral")})
        again = _next(a, pid).json()
        assert [d["result"] for d in again["drafts"]] == [choice("Neutral")]
