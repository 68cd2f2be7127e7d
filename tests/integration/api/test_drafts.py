"""Drafts: per user, replaced on save, private, gone when the user submits."""

from __future__ import annotations

from tests.conftest import TEXT_CONFIG
from tests.support.labeling import choice, member, project_with_tasks


def test_save_replace_submit(api, live_server):
    project, (task,) = project_with_tasks(api, TEXT_CONFIG, 1)
    pid = project["id"]
    with member(api, live_server, pid, "annotator", "a") as a, member(api, live_server, pid, "annotator", "b") as b:
        r = a.post(f"/api/tasks/{task}/drafts", json={"result": choice(), "lead_time": 2.0})
        assert r.status_code == 201, r.text
        draft = r.json()
        assert draft["task"] == task and draft["user"] == a.user_id and draft["annotation"] is None
        assert api.get(f"/api/tasks/{task}/").json()["state"] == "in_progress"

        again = a.post(f"/api/tasks/{task}/drafts", json={"result": choice("Negative")}).json()
        assert again["id"] == draft["id"] and again["result"] == choice("Negative") and again["lead_time"] == 2.0
        b_draft = b.post(f"/api/tasks/{task}/drafts", json={"result": []}).json()

        assert [d["id"] for d in a.get(f"/api/tasks/{task}/drafts").json()] == [draft["id"]]
        assert len(api.get(f"/api/tasks/{task}/drafts").json()) == 2
        r = b.get(f"/api/drafts/{draft['id']}")
        assert r.status_code == 403 and "private" in r.json()["detail"]
        assert b.patch(f"/api/drafts/{draft['id']}", json={"result": []}).status_code == 403

        r = a.patch(f"/api/drafts/{draft['id']}", json={"was_postponed": True})
        assert r.status_code == 200 and r.json()["was_postponed"] is True

        submitted = a.post(f"/api/tasks/{task}/annotations/", json={"result": choice()}).json()
        assert submitted["draft_created_at"] is not None
        assert a.get(f"/api/tasks/{task}/drafts").json() == []
        assert a.get(f"/api/drafts/{draft['id']}").status_code == 404
        # Other users' drafts stay.
        assert [d["id"] for d in b.get(f"/api/tasks/{task}/drafts").json()] == [b_draft["id"]]
        assert b.delete(f"/api/drafts/{b_draft['id']}").status_code == 204
        assert api.get(f"/api/tasks/{task}/drafts").json() == []


def test_drafts_of_an_annotation(api, live_server):
    _, (task,) = project_with_tasks(api, TEXT_CONFIG, 1)
    annotation = api.post(f"/api/tasks/{task}/annotations/", json={"result": choice()}).json()
    r = api.post(f"/api/tasks/{task}/annotations/{annotation['id']}/drafts", json={"result": choice("Neutral")})
    assert r.status_code == 201 and r.json()["annotation"] == annotation["id"]
    assert len(api.get(f"/api/tasks/{task}/annotations/{annotation['id']}/drafts").json()) == 1
    api.patch(f"/api/annotations/{annotation['id']}/", json={"result": choice("Neutral")})
    assert api.get(f"/api/tasks/{task}/drafts").json() == []


def test_draft_results_are_validated_and_viewers_cannot_save(api, live_server):
    project, (task,) = project_with_tasks(api, TEXT_CONFIG, 1)
    r = api.post(f"/api/tasks/{task}/drafts", json={"result": choice("Maybe")})
    assert r.status_code == 400 and "result[0].value.choices" in r.json()["validation_errors"]
    with member(api, live_server, project["id"], "viewer", "v") as viewer:
        r = viewer.post(f"/api/tasks/{task}/drafts", json={"result": []})
        assert r.status_code == 403 and "annotator role" in r.json()["detail"]
    assert api.post("/api/tasks/999/drafts", json={"result": []}).status_code == 404
