"""Annotations over HTTP: create/list/get/update/delete, result validation, skip, roles, counters."""

from __future__ import annotations

from tests.conftest import TEXT_CONFIG
from tests.support.labeling import choice, member, project_with_tasks


def test_create_list_get_update_delete(api, live_server):
    project, (task, *_) = project_with_tasks(api, TEXT_CONFIG, 2)
    r = api.post(f"/api/tasks/{task}/annotations/", json={"result": choice(), "lead_time": 3.5})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["task"] == task and created["project"] == project["id"]
    assert created["completed_by"] == 1 and created["created_username"] == "admin"
    assert created["lead_time"] == 3.5 and created["was_cancelled"] is False and created["ground_truth"] is False
    assert created["last_action"] == "submitted" and created["state"] == "submitted"
    for field in ("draft_created_at", "parent_prediction", "parent_annotation", "updated_by", "created_at"):
        assert field in created

    listed = api.get(f"/api/tasks/{task}/annotations/").json()
    assert [a["id"] for a in listed] == [created["id"]]
    assert api.get(f"/api/annotations/{created['id']}/").json()["result"] == choice()

    r = api.patch(f"/api/annotations/{created['id']}/", json={"result": choice("Negative"), "ground_truth": True})
    assert r.status_code == 200, r.text
    assert r.json()["result"][0]["value"]["choices"] == ["Negative"]
    assert r.json()["ground_truth"] is True and r.json()["last_action"] == "updated"

    t = api.get(f"/api/tasks/{task}/").json()
    assert t["total_annotations"] == 1 and t["is_labeled"] is True and t["state"] == "completed"

    assert api.delete(f"/api/annotations/{created['id']}/").status_code == 204
    assert api.get(f"/api/annotations/{created['id']}/").status_code == 404
    t = api.get(f"/api/tasks/{task}/").json()
    assert t["total_annotations"] == 0 and t["is_labeled"] is False and t["state"] == "new"


def test_invalid_results_name_the_item_and_field(api):
    _, (task,) = project_with_tasks(api, TEXT_CONFIG, 1)
    result = choice() + choice() + choice("Maybe")
    r = api.post(f"/api/tasks/{task}/annotations/", json={"result": result})
    assert r.status_code == 400
    body = r.json()
    assert list(body["validation_errors"]) == ["result[2].value.choices"]
    assert "'Maybe' is not a choice of sentiment" in body["detail"]

    bad = [{"from_name": "sentiment", "to_name": "image", "type": "labels", "value": {"choices": ["Positive"]}}]
    errors = api.post(f"/api/tasks/{task}/annotations/", json={"result": bad}).json()["validation_errors"]
    assert set(errors) == {"result[0].to_name", "result[0].type"}
    r = api.post(f"/api/tasks/{task}/annotations/", json={"result": choice(), "colour": 1})
    assert r.status_code == 400 and r.json()["validation_errors"] == {"colour": ["unknown field"]}
    assert api.get(f"/api/tasks/{task}/annotations/").json() == []
    # PATCH is validated the same way.
    created = api.post(f"/api/tasks/{task}/annotations/", json={"result": choice()}).json()
    r = api.patch(f"/api/annotations/{created['id']}/", json={"result": choice("Maybe")})
    assert r.status_code == 400 and "result[0].value.choices" in r.json()["validation_errors"]


def test_missing_task_and_annotation_are_404(api):
    r = api.post("/api/tasks/999/annotations/", json={"result": []})
    assert r.status_code == 404 and "task 999" in r.json()["detail"]
    assert api.get("/api/annotations/999/").status_code == 404


def test_skip_is_a_cancelled_annotation(api):
    _, (task,) = project_with_tasks(api, TEXT_CONFIG, 1)
    r = api.post(f"/api/tasks/{task}/annotations/", json={"result": [], "was_cancelled": True})
    assert r.status_code == 201, r.text
    assert r.json()["was_cancelled"] is True and r.json()["last_action"] == "skipped"
    t = api.get(f"/api/tasks/{task}/").json()
    assert t["cancelled_annotations"] == 1 and t["total_annotations"] == 0 and t["is_labeled"] is False
    assert t["state"] == "skipped"


def test_skip_disabled_and_empty_annotations_disabled(api):
    _, (task,) = project_with_tasks(api, TEXT_CONFIG, 1, show_skip_button=False, enable_empty_annotation=False)
    r = api.post(f"/api/tasks/{task}/annotations/", json={"result": []})
    assert r.status_code == 400 and "empty annotations are disabled" in r.json()["detail"]


def test_annotators_see_and_change_only_their_own(api, live_server):
    project, (task,) = project_with_tasks(api, TEXT_CONFIG, 1, maximum_annotations=2)
    with (
        member(api, live_server, project["id"], "annotator", "ann1") as ann1,
        member(api, live_server, project["id"], "annotator", "ann2") as ann2,
        member(api, live_server, project["id"], "viewer", "viewer") as viewer,
        member(api, live_server, project["id"], "reviewer", "rev") as reviewer,
    ):
        mine = ann1.post(f"/api/tasks/{task}/annotations/", json={"result": choice()}).json()
        theirs = ann2.post(f"/api/tasks/{task}/annotations/", json={"result": choice("Negative")}).json()
        assert mine["completed_by"] == ann1.user_id and mine["created_username"] == "ann1"

        assert [a["id"] for a in ann1.get(f"/api/tasks/{task}/annotations/").json()] == [mine["id"]]
        assert len(viewer.get(f"/api/tasks/{task}/annotations/").json()) == 2
        assert len(reviewer.get(f"/api/tasks/{task}/annotations/").json()) == 2

        r = ann1.get(f"/api/annotations/{theirs['id']}/")
        assert r.status_code == 403 and "their own" in r.json()["detail"]
        assert ann1.patch(f"/api/annotations/{theirs['id']}/", json={"result": []}).status_code == 403
        assert ann1.delete(f"/api/annotations/{theirs['id']}/").status_code == 403

        r = viewer.post(f"/api/tasks/{task}/annotations/", json={"result": choice()})
        assert r.status_code == 403 and "annotator role" in r.json()["detail"]
        r = ann1.post(f"/api/tasks/{task}/annotations/", json={"result": choice(), "completed_by": ann2.user_id})
        assert r.status_code == 403 and "completed_by" in r.json()["detail"]
        r = ann1.patch(f"/api/annotations/{mine['id']}/", json={"ground_truth": True})
        assert r.status_code == 403 and "reviewer" in r.json()["detail"]
        # Reviewers may correct someone else's work.
        r = reviewer.patch(f"/api/annotations/{theirs['id']}/", json={"result": choice("Neutral")})
        assert r.status_code == 200 and r.json()["updated_by"] == reviewer.user_id

    with live_server.client(token=None) as anonymous:
        assert anonymous.get(f"/api/tasks/{task}/annotations/").status_code == 401


def test_non_members_are_forbidden(api, live_server):
    project, (task,) = project_with_tasks(api, TEXT_CONFIG, 1)
    other, _ = project_with_tasks(api, TEXT_CONFIG, 0)
    with member(api, live_server, other["id"], "manager", "outsider") as outsider:
        r = outsider.get(f"/api/tasks/{task}/annotations/")
        assert r.status_code == 403 and "you have no role" in r.json()["detail"]


def test_managers_may_submit_for_someone_else(api, live_server):
    project, (task,) = project_with_tasks(api, TEXT_CONFIG, 1)
    with member(api, live_server, project["id"], "annotator", "ann1") as ann1:
        r = api.post(f"/api/tasks/{task}/annotations/", json={"result": choice(), "completed_by": ann1.user_id})
        assert r.status_code == 201 and r.json()["completed_by"] == ann1.user_id
        assert r.json()["created_username"] == "ann1"
    r = api.post(f"/api/tasks/{task}/annotations/", json={"result": choice(), "completed_by": 4242})
    assert r.status_code == 400 and r.json()["validation_errors"] == {"completed_by": ["no such user"]}


def test_project_counters_and_metrics(api):
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 3)
    api.post(f"/api/tasks/{tasks[0]}/annotations/", json={"result": choice()})
    api.post(f"/api/tasks/{tasks[1]}/annotations/", json={"result": [], "was_cancelled": True})
    p = api.get(f"/api/projects/{project['id']}/").json()
    assert p["total_annotations_number"] == 1 and p["skipped_annotations_number"] == 1
    assert p["num_tasks_with_annotations"] == 1 and p["finished_task_number"] == 1
    metrics = api.get("/metrics").text
    assert f'kubelabel_annotations_submitted_total{{project="{project["id"]}"}}' in metrics
    assert f'kubelabel_annotations_skipped_total{{project="{project["id"]}"}}' in metrics
