"""The labeling loop's two implementations leave the same database, call for call.

One scenario of labeling calls runs twice on PostgreSQL, each time on a fresh database: through
the services (KUBELABEL_PG_FAST_LOOP=false) and through the database functions
(`kubelabel_next_task`, `kubelabel_submit_checked`, api_server/workflow/sql). After every call
both databases must hold the same tasks (state, counters), locks, history, annotations, drafts,
reviews and outbox rows, and the call must answer the same. Ids are compared by what they name
(a task by its place in the import, a user by name, other rows in the order they were created);
timestamps by whether they are set, a lock's expiry by whether it is still live.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from api_server.metrics import REGISTRY
from tests.conftest import TEXT_CONFIG
from tests.support.apiserver import LiveServer
from tests.support.labeling import choice, member, project_with_tasks

pytestmark = pytest.mark.postgres

# What each id column names (the rest of a row is compared as it is).
_KINDS = {
    "task": "task",
    "project": "project",
    "user": "user",
    "completed_by": "user",
    "updated_by": "user",
    "reviewer": "user",
    "annotation": "annotation",
    "parent_annotation": "annotation",
    "parent_prediction": "prediction",
    "file_upload": "file_upload",
}
_NESTED = {"annotations": "annotation", "drafts": "draft", "predictions": "prediction"}
# Rows in the order they are labelled: a row's references are labelled before it is.
_TABLES = {
    "annotations": "annotation",
    "predictions": "prediction",
    "drafts": "draft",
    "reviews": "review",
    "task_transitions": "transition",
    "event_outbox": "event",
}
_MENTION = re.compile(r"\b(annotation|draft) (\d+)\b")


class Ids:
    """Labels for one database's ids: the same row gets the same label in both runs."""

    def __init__(self, tasks: list[int]) -> None:
        self.labels: dict[tuple[str, int], str] = {("task", t): f"task{i}" for i, t in enumerate(tasks)}

    def name(self, kind: str, value: int) -> str:
        key = (kind, value)
        if key not in self.labels:
            self.labels[key] = f"{kind}{sum(1 for k, _ in self.labels if k == kind)}"
        return self.labels[key]

    def plain(self, value: Any, kind: str | None = None) -> Any:
        """A row or an answer with its ids labelled and its timestamps reduced to whether they are set."""
        if isinstance(value, list):
            return [self.plain(item, kind) for item in value]
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, item in value.items():
            field = key.removesuffix("_id")
            if key == "created_ago":
                continue
            if key == "id" and kind is not None:
                out[key] = self.name(kind, item)
            elif key.endswith("_at"):
                out[key] = item is not None
            elif field in _KINDS and isinstance(item, int):
                out[key] = self.name(_KINDS[field], item)
            elif key in _NESTED:
                out[key] = self.plain(item, _NESTED[key])
            elif key == "comment" and isinstance(item, str):
                out[key] = _MENTION.sub(lambda m: self.name(m[1], int(m[2])), item)
            else:
                out[key] = self.plain(item)
        return out


def snapshot(server: LiveServer, ids: Ids) -> dict[str, Any]:
    """Everything the labeling loop writes, ids labelled."""
    with server.session_factory() as session:

        def rows(sql: str) -> list[dict[str, Any]]:
            return [dict(r) for r in session.execute(text(sql)).mappings()]

        for user in rows("SELECT id, username FROM users"):
            ids.labels[("user", user["id"])] = user["username"]
        for project in rows("SELECT id FROM projects ORDER BY id"):
            ids.name("project", project["id"])
        for table, kind in _TABLES.items():
            for row in rows(f"SELECT id FROM {table} ORDER BY id"):
                ids.name(kind, row["id"])
        state = {
            "tasks": ids.plain(rows("SELECT * FROM tasks ORDER BY id"), "task"),
            # Locks by what they lock: a lock's id may differ (an upsert that updates draws one).
            "locks": sorted(
                (ids.plain(r) for r in rows("SELECT task_id, user_id, expire_at > now() AS live FROM task_locks")),
                key=repr,
            ),
        }
        for table, kind in _TABLES.items():
            state[table] = ids.plain(rows(f"SELECT * FROM {table} ORDER BY id"), kind)
    return state


class Scenario:
    """Runs labeling calls against one server and records, after each, its answer and the database."""

    def __init__(
        self, server: LiveServer, admin: httpx.Client, project: int, tasks: list[int], clients: dict[str, httpx.Client]
    ) -> None:
        self.server = server
        self.project = project
        self.admin = admin
        self.tasks = tasks
        self.clients = clients
        self.ids = Ids(tasks)
        self.steps: list[tuple[str, Any, dict[str, Any]]] = []
        self.annotations: dict[tuple[str, int], int] = {}  # (author, task index) -> annotation id

    def call(self, label: str, who: str, method: str, path: str, body: Any = None) -> httpx.Response:
        client = self.admin if who == "admin" else self.clients[who]
        r = client.request(method, path, json=body)
        state = snapshot(self.server, self.ids)  # labels the rows the call created before its answer is read
        answer = self.ids.plain(r.json(), _answer_kind(path)) if r.content else None
        self.steps.append((label, (r.status_code, answer), state))
        return r

    def next(self, who: str) -> httpx.Response:
        return self.call(f"{who} asks for the next task", who, "GET", f"/api/projects/{self.project}/next")

    def submit(self, who: str, task: int, label: str = "Positive", **fields: Any) -> None:
        body = {"result": choice(label), "lead_time": 2.5, **fields}
        r = self.call(f"{who} submits task{task}", who, "POST", f"/api/tasks/{self.tasks[task]}/annotations/", body)
        if r.status_code == 201:
            self.annotations[(who, task)] = r.json()["id"]

    def skip(self, who: str, task: int) -> None:
        self.call(f"{who} skips task{task}", who, "POST", f"/api/tasks/{self.tasks[task]}/skip/", {"lead_time": 1.0})

    def draft(self, who: str, task: int, label: str) -> None:
        body = {"result": choice(label), "lead_time": 1.5}
        self.call(f"{who} saves a draft of task{task}", who, "POST", f"/api/tasks/{self.tasks[task]}/drafts/", body)

    def update(self, who: str, author: str, task: int, label: str) -> None:
        annotation = self.annotations[(author, task)]
        body = {"result": choice(label)}
        self.call(f"{who} updates {author}'s task{task}", who, "PATCH", f"/api/annotations/{annotation}/", body)

    def review(self, who: str, author: str, task: int, accepted: bool) -> None:
        annotation = self.annotations[(author, task)]
        verdict = "accepts" if accepted else "rejects"
        body = {"accepted": accepted, "comment": f"{verdict} it"}
        self.call(f"{who} {verdict} {author}'s task{task}", who, "POST", f"/api/annotations/{annotation}/review/", body)

    def expire_lock(self, who: str) -> None:
        """As if the lock's time had run out (a TTL is at least 10 s: wound back, not waited for)."""
        with self.server.session_factory() as session:
            session.execute(
                text("UPDATE task_locks SET expire_at = now() - interval '1 second' WHERE user_id = :user"),
                {"user": self.clients[who].user_id},  # set by tests.support.labeling.member
            )
            session.commit()
        self.steps.append((f"{who}'s lock expires", None, snapshot(self.server, self.ids)))


def _answer_kind(path: str) -> str | None:
    for part, kind in (
        ("/next", "task"),
        ("/review/", "review"),
        ("/drafts/", "draft"),
        ("/annotations/", "annotation"),
        ("/skip/", "annotation"),
        ("/predictions/", "prediction"),
    ):
        if part in path:
            return kind
    return None


def labeling_day(s: Scenario) -> None:
    """Four tasks wanting two annotations each, four annotators and a reviewer."""
    s.call("a prediction on task1", "admin", "POST", "/api/predictions/", _prediction(s.tasks[1]))
    s.next("a")  # task0: new -> in_progress, locked for a
    s.next("a")  # a reload: the same task, the lock extended
    s.draft("a", 0, "Neutral")
    s.next("a")  # the same task, now with a's draft
    s.next("b")  # task0's second place
    s.next("c")  # task0 is full (two locks): task1, with its prediction
    s.submit("a", 0, "Neutral")  # takes a's draft
    s.skip("b", 0)  # a skip does not count: task0 stays in progress
    s.submit("c", 1, "Negative")
    s.next("b")  # task1 (b skipped task0)
    s.submit("b", 1)  # task1 completed, labeled
    s.next("c")  # task0's free place
    s.expire_lock("c")
    s.next("d")  # task0: c's lock no longer holds the place
    s.next("c")  # c's lock expired and task0 is full again: task2
    s.submit("d", 0)  # task0 completed
    s.update("a", "a", 0, "Negative")
    s.review("rev", "a", 0, accepted=False)  # task0 rejected: one annotation counts
    s.skip("c", 2)  # nobody else on task2: skipped
    s.next("c")  # task0 again, from rejected
    s.submit("c", 0, "Negative")
    s.update("a", "a", 0, "Positive")  # a reworks the rejected annotation: it counts again
    s.review("rev", "b", 1, accepted=True)
    s.review("rev", "c", 1, accepted=True)  # task1 accepted
    s.next("d")  # task2, from skipped
    s.submit("d", 2)
    s.next("a")
    s.submit("a", 2, "Neutral")
    s.next("b")
    s.skip("b", 3)
    s.next("a")
    s.submit("a", 3)
    s.call(
        "a submits a label the config lacks",
        "a",
        "POST",
        f"/api/tasks/{s.tasks[3]}/annotations/",
        {"result": choice("Maybe")},
    )
    s.next("c")
    s.submit("c", 3)
    for who in ("a", "b", "c", "d"):
        s.next(who)  # nothing left: 404


def _prediction(task: int) -> dict[str, Any]:
    return {"task": task, "result": choice("Negative"), "score": 0.4, "model_version": "v1"}


def run(server: LiveServer, scenario: Callable[[Scenario], None]) -> tuple[Scenario, dict[tuple[str, str], float]]:
    before = _calls()
    with server.client() as admin:
        project, tasks = project_with_tasks(admin, TEXT_CONFIG, 4, overlap=2)
        roles = {"a": "annotator", "b": "annotator", "c": "annotator", "d": "annotator", "rev": "reviewer"}
        clients = {name: member(admin, server, project["id"], role, name) for name, role in roles.items()}
        try:
            s = Scenario(server, admin, project["id"], tasks, clients)
            snapshot(server, s.ids)
            scenario(s)
        finally:
            for client in clients.values():
                client.close()
    after = _calls()
    return s, {key: after[key] - before[key] for key in after if after[key] != before[key]}


def _calls() -> dict[tuple[str, str], float]:
    return {
        (call, by): REGISTRY.get_sample_value("kubelabel_pg_loop_calls_total", {"call": call, "by": by}) or 0.0
        for call in ("next", "submit")
        for by in ("database", "services")
    }


def test_the_services_and_the_database_functions_leave_the_same_database(server_pool):
    services, by_services = run(server_pool.new("postgres", KUBELABEL_PG_FAST_LOOP=False), labeling_day)
    functions, by_functions = run(server_pool.new("postgres"), labeling_day)
    # Each run went the way it was meant to: every /next and submission through one implementation.
    nexts = sum(label.endswith("asks for the next task") for label, _, _ in services.steps)
    submits = sum(" submits " in label or " skips " in label for label, _, _ in services.steps)
    assert by_services == {}  # the services answer without counting
    assert by_functions == {("next", "database"): nexts, ("submit", "database"): submits}
    assert [label for label, _, _ in functions.steps] == [label for label, _, _ in services.steps]
    for (label, answer, state), (_, expected_answer, expected_state) in zip(
        functions.steps, services.steps, strict=True
    ):
        assert answer == expected_answer, f"after {label!r}: the answers differ"
        for table, rows in expected_state.items():
            assert state[table] == rows, f"after {label!r}: {table} differ"
    # The scenario reached what it was written for.
    final = {row["id"]: row for row in services.steps[-1][2]["tasks"]}
    assert [final[f"task{i}"]["state"] for i in range(4)] == ["completed", "accepted", "completed", "completed"]
    states = {(t["from_state"], t["to_state"]) for t in services.steps[-1][2]["task_transitions"]}
    assert {("completed", "rejected"), ("rejected", "in_progress"), ("in_progress", "skipped")} <= states
    answers = [answer[1] for _, answer, _ in services.steps if answer and isinstance(answer[1], dict)]
    assert any(a.get("drafts") for a in answers) and any(a.get("predictions") for a in answers)
    assert services.steps[-1][2]["annotations"][0]["draft_created_at"] is True  # a's draft, taken on submit
    assert any(step[0] == "c's lock expires" for step in services.steps)
