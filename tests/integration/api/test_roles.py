"""Role rules end to end: what each project role may do on every endpoint family.

viewer: reads. annotator: + labels (annotations, drafts, next task). reviewer: + reviews.
manager: + config, import, export, tasks, predictions, members, webhooks, deletion.
Outsiders get 403 on a project's resources and see nothing in listings; a 403 names the
role that would have been needed.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from api_server.routers import ROUTERS
from tests.conftest import TEXT_CONFIG
from tests.support.team import ROLES, team

RANK = {"outsider": -1, "viewer": 0, "annotator": 1, "reviewer": 2, "manager": 3}
CHOICE = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]
NEW_CONFIG = TEXT_CONFIG.replace('<Choice value="Neutral"/>', '<Choice value="Neutral"/><Choice value="Mixed"/>')


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path.split("?")[0]).rstrip("/")


SERVED = {_shape(getattr(r, "path", "")) for router in ROUTERS for r in router.routes}


def served(path_template: str) -> bool:
    """Whether the app serves this endpoint (families still being built are skipped)."""
    return _shape(path_template) in SERVED


# (what, method, path, body, minimum role, statuses that mean "allowed")
CASES: list[tuple[str, str, str, Any, str, set[int]]] = [
    ("read the project", "GET", "/api/projects/{pid}/", None, "viewer", {200}),
    ("validate a config", "POST", "/api/projects/{pid}/validate/", {"label_config": TEXT_CONFIG}, "viewer", {200}),
    ("list members", "GET", "/api/projects/{pid}/members/", None, "viewer", {200}),
    ("list annotators", "GET", "/api/projects/{pid}/annotators/", None, "viewer", {200}),
    ("list tasks", "GET", "/api/tasks/?project={pid}", None, "viewer", {200}),
    ("list project tasks", "GET", "/api/projects/{pid}/tasks/", None, "viewer", {200}),
    ("read a task", "GET", "/api/tasks/{tid}/", None, "viewer", {200}),
    ("read annotations", "GET", "/api/tasks/{tid}/annotations/", None, "viewer", {200}),
    ("annotate", "POST", "/api/tasks/{tid}/annotations/", {"result": CHOICE}, "annotator", {201}),
    ("save a draft", "POST", "/api/tasks/{tid}/drafts/", {"result": CHOICE}, "annotator", {201}),
    ("get the next task", "GET", "/api/projects/{pid}/next/", None, "annotator", {200, 404}),
    ("review", "POST", "/api/annotations/{aid}/review/", {"accepted": True}, "reviewer", {201, 409}),
    ("change the config", "PATCH", "/api/projects/{pid}/", {"label_config": NEW_CONFIG}, "manager", {200}),
    ("import", "POST", "/api/projects/{pid}/import", [{"text": "imported"}], "manager", {201}),
    ("create a task", "POST", "/api/tasks/", {"project": "{pid}", "data": {"text": "t"}}, "manager", {201}),
    ("edit a task", "PATCH", "/api/tasks/{tid}/", {"meta": {"k": 1}}, "manager", {200}),
    ("add a prediction", "POST", "/api/predictions/", {"task": "{tid}", "result": CHOICE}, "manager", {201}),
    ("export", "GET", "/api/projects/{pid}/export?exportType=JSON", None, "manager", {200}),
    ("export formats", "GET", "/api/projects/{pid}/export/formats", None, "manager", {200}),
    ("list webhooks", "GET", "/api/webhooks/?project={pid}", None, "manager", {200}),
    ("add a webhook", "POST", "/api/webhooks/", {"url": "https://h.example.com", "project": "{pid}"}, "manager", {201}),
    (
        "add a member",
        "POST",
        "/api/projects/{pid}/members/",
        {"user": "{newcomer}", "role": "viewer"},
        "manager",
        {201},
    ),
    ("list storages", "GET", "/api/storages/?project={pid}", None, "manager", {200}),
    ("list ML backends", "GET", "/api/ml/?project={pid}", None, "manager", {200}),
    ("delete tasks", "DELETE", "/api/projects/{pid}/tasks/?ids={spare}", None, "manager", {204}),
]


def fill(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and value[1:-1] in ids:
            return ids[value[1:-1]]
        return value.format(**ids)
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


@pytest.fixture
def project_with_data(api, text_project) -> dict[str, int]:
    pid = text_project["id"]
    r = api.post(f"/api/projects/{pid}/import", json=[{"text": "one"}, {"text": "two"}], params={"return_task_ids": 1})
    assert r.status_code == 201, r.text
    tasks = api.get(f"/api/projects/{pid}/tasks/").json()
    tid, spare = sorted(t["id"] for t in tasks)
    r = api.post(f"/api/tasks/{tid}/annotations/", json={"result": CHOICE})
    assert r.status_code == 201, r.text
    return {"pid": pid, "tid": tid, "spare": spare, "aid": r.json()["id"]}


def test_every_endpoint_checks_the_role(api, live_server, project_with_data):
    ids = dict(project_with_data)
    with team(live_server, api, ids["pid"]) as t:
        ids["newcomer"] = api.post("/api/users/", json={"username": "newcomer"}).json()["id"]
        checked = 0
        for what, method, path, body, minimum, ok in CASES:
            if not served(path):
                continue  # that endpoint family has not landed yet
            url = fill(path, ids)
            checked += 1
            for role in ("outsider", *ROLES):
                r = t[role].request(method, url, json=fill(body, ids))
                if RANK[role] >= RANK[minimum]:
                    assert r.status_code in ok, (what, role, r.status_code, r.text)
                else:
                    assert r.status_code == 403, (what, role, r.status_code, r.text)
                    if role != "outsider":
                        assert minimum in r.json()["detail"], (what, role, r.json())
        assert checked >= 15


def test_only_managers_delete(api, live_server, project_with_data):
    pid, tid = project_with_data["pid"], project_with_data["tid"]
    with team(live_server, api, pid) as t:
        for role in ("outsider", "viewer", "annotator", "reviewer"):
            assert t[role].delete(f"/api/tasks/{tid}/").status_code == 403, role
            assert t[role].delete(f"/api/projects/{pid}/").status_code == 403, role
        assert t["manager"].delete(f"/api/tasks/{tid}/").status_code == 204
        assert t["manager"].delete(f"/api/projects/{pid}/").status_code == 204
        assert api.get(f"/api/projects/{pid}/").status_code == 404


def test_outsiders_see_nothing_in_listings(api, live_server, project_with_data):
    pid = project_with_data["pid"]
    with team(live_server, api, pid) as t:
        api.post("/api/webhooks/", json={"url": "https://h.example.com", "project": pid})
        assert t["outsider"].get("/api/projects/").json()["count"] == 0
        assert t["viewer"].get("/api/projects/").json()["count"] == 1
        assert t["outsider"].get("/api/webhooks/").json() == []
        assert t["annotator"].get("/api/webhooks/").json() == []  # headers may hold credentials
        assert len(t["manager"].get("/api/webhooks/").json()) == 1
        assert t["outsider"].get(f"/api/tasks/{project_with_data['tid']}/").status_code in {403, 404}


def test_annotators_see_only_their_own_annotations(api, live_server, project_with_data):
    pid, tid = project_with_data["pid"], project_with_data["tid"]
    with team(live_server, api, pid) as t:
        mine = t["annotator"].post(f"/api/tasks/{tid}/annotations/", json={"result": CHOICE})
        assert mine.status_code == 201, mine.text
        seen = [a["id"] for a in t["annotator"].get(f"/api/tasks/{tid}/annotations/").json()]
        assert seen == [mine.json()["id"]]
        everyone = {a["id"] for a in t["viewer"].get(f"/api/tasks/{tid}/annotations/").json()}
        assert everyone == {mine.json()["id"], project_with_data["aid"]}
        # Nor may they change someone else's.
        r = t["annotator"].patch(f"/api/annotations/{project_with_data['aid']}/", json={"result": []})
        assert r.status_code == 403


def test_organisation_roles(api, live_server):
    from tests.support.team import new_user

    _, manager_token = new_user(api, "org-manager", role="manager")
    _, annotator_token = new_user(api, "org-annotator", role="annotator")
    with live_server.client(token=annotator_token) as annotator:
        r = annotator.post("/api/projects/", json={"title": "nope"})
        assert r.status_code == 403 and "manager" in r.json()["detail"]
        assert annotator.post("/api/users/", json={"username": "x"}).status_code == 403
    with live_server.client(token=manager_token) as manager:
        r = manager.post("/api/projects/", json={"title": "mine"})
        assert r.status_code == 201  # and its creator manages it
        assert manager.patch(f"/api/projects/{r.json()['id']}/", json={"title": "still mine"}).status_code == 200
        r = manager.post("/api/webhooks/", json={"url": "https://h.example.com"})
        assert r.status_code == 403 and "admin" in r.json()["detail"]  # organisation-wide hooks: admins
