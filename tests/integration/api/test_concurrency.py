"""Many annotators pulling and submitting at once: every task gets exactly its overlap.

On PostgreSQL both implementations of the loop run it: the database functions (the default,
workflow/pg_loop.py) and the services (KUBELABEL_PG_FAST_LOOP=false).
"""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import select

from api_server.db.models import Annotation, TaskLock
from tests.conftest import TEXT_CONFIG
from tests.support.labeling import choice, member, project_with_tasks

ANNOTATORS = 16
TASKS = 60
OVERLAP = 2


def test_sixteen_annotators_with_overlap_two(api, live_server):
    sixteen_annotators(api, live_server)


def test_sixteen_annotators_through_the_services_on_postgres(server_pool):
    server = server_pool.new("postgres", KUBELABEL_PG_FAST_LOOP=False)
    with server.client() as api:
        sixteen_annotators(api, server)


def sixteen_annotators(api, live_server) -> None:
    project, tasks = project_with_tasks(api, TEXT_CONFIG, TASKS, overlap=OVERLAP)
    pid = project["id"]
    clients = [member(api, live_server, pid, "annotator", f"annotator{i}") for i in range(ANNOTATORS)]
    submitted: list[tuple[int, int]] = []  # (user, task) of every 201
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(ANNOTATORS)

    def annotate(client) -> None:
        start.wait()
        try:
            for _ in range(TASKS + 5):
                r = client.get(f"/api/projects/{pid}/next")
                if r.status_code == 404:
                    return
                if r.status_code != 200:
                    failures.append(f"next: {r.status_code} {r.text}")
                    return
                task = r.json()["id"]
                s = client.post(f"/api/tasks/{task}/annotations/", json={"result": choice(), "lead_time": 1.0})
                if s.status_code != 201:
                    failures.append(f"submit {task}: {s.status_code} {s.text}")
                    return
                with lock:
                    submitted.append((client.user_id, task))
            failures.append("an annotator never ran out of tasks")
        except Exception as exc:  # a thread's error must fail the test, not vanish
            failures.append(repr(exc))

    threads = [threading.Thread(target=annotate, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for c in clients:
        c.close()
    assert not any(t.is_alive() for t in threads), "annotators hung"
    assert failures == []

    with live_server.session_factory() as session:
        stored = [(a.completed_by_id, a.task_id) for a in session.scalars(select(Annotation))]
        assert session.scalars(select(TaskLock)).all() == []  # every lock released on submit
    # No lost submission, nothing extra.
    assert sorted(stored) == sorted(submitted)
    # Every task annotated exactly `overlap` times, never twice by the same annotator.
    per_task = Counter(task for _, task in stored)
    assert per_task == dict.fromkeys(tasks, OVERLAP)
    assert len(set(stored)) == len(stored)
    # Work was shared: more than a few annotators got tasks.
    assert len({user for user, _ in stored}) > ANNOTATORS // 2

    listed = api.get(f"/api/projects/{pid}/").json()
    assert listed["finished_task_number"] == TASKS and listed["total_annotations_number"] == TASKS * OVERLAP
