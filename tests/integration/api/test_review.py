"""Reviews: accept/reject with a comment, task states and history, rejected work back in the queue."""

from __future__ import annotations

from tests.conftest import TEXT_CONFIG
from tests.support.labeling import choice, member, project_with_tasks


def _submit(client, task_id, value="Positive"):
    r = client.post(f"/api/tasks/{task_id}/annotations/", json={"result": choice(value)})
    assert r.status_code == 201, r.text
    return r.json()


def _review(client, annotation_id, accepted, comment=""):
    return client.post(f"/api/annotations/{annotation_id}/review", json={"accepted": accepted, "comment": comment})


def test_accept_completes_the_review(api, live_server):
    project, (task,) = project_with_tasks(api, TEXT_CONFIG, 1)
    pid = project["id"]
    with (
        member(api, live_server, pid, "annotator", "ann") as ann,
        member(api, live_server, pid, "reviewer", "rev") as rev,
    ):
        ann.get(f"/api/projects/{pid}/next")
        annotation = _submit(ann, task)
        r = _review(rev, annotation["id"], True, "looks right")
        assert r.status_code == 201, r.text
        review = r.json()
        assert review["accepted"] is True and review["comment"] == "looks right"
        assert review["reviewer"] == rev.user_id and review["task_state"] == "accepted"
        got = api.get(f"/api/annotations/{annotation['id']}/").json()
        assert got["review_status"] == "accepted" and got["last_action"] == "accepted" and got["state"] == "accepted"
        history = api.get(f"/api/tasks/{task}/history").json()
        assert [(h["from_state"], h["to_state"]) for h in history] == [
            ("new", "in_progress"),
            ("in_progress", "completed"),
            ("completed", "accepted"),
        ]
        assert history[-1]["user"] == rev.user_id and "looks right" in history[-1]["comment"]
    metrics = api.get("/metrics").text
    assert f'kubelabel_reviews_total{{project="{pid}",verdict="accepted"}}' in metrics


def test_rejected_work_goes_back_to_the_queue_for_someone_else(api, live_server):
    project, (task,) = project_with_tasks(api, TEXT_CONFIG, 1)
    pid = project["id"]
    with (
        member(api, live_server, pid, "annotator", "a") as a,
        member(api, live_server, pid, "annotator", "b") as b,
        member(api, live_server, pid, "reviewer", "rev") as rev,
    ):
        assert a.get(f"/api/projects/{pid}/next").json()["id"] == task
        first = _submit(a, task, "Negative")
        assert b.get(f"/api/projects/{pid}/next").status_code == 404  # done, for now

        r = _review(rev, first["id"], False, "wrong sentiment")
        assert r.status_code == 201 and r.json()["task_state"] == "rejected"
        t = api.get(f"/api/tasks/{task}/").json()
        assert t["state"] == "rejected" and t["is_labeled"] is False

        # The author never gets it back; another annotator does.
        assert a.get(f"/api/projects/{pid}/next").status_code == 404
        assert b.get(f"/api/projects/{pid}/next").json()["id"] == task
        _submit(b, task, "Positive")
        t = api.get(f"/api/tasks/{task}/").json()
        assert t["state"] == "completed" and t["is_labeled"] is True and t["total_annotations"] == 2
    states = [(h["from_state"], h["to_state"]) for h in api.get(f"/api/tasks/{task}/history").json()]
    assert states[-3:] == [("completed", "rejected"), ("rejected", "in_progress"), ("in_progress", "completed")]
    assert 'verdict="rejected"' in api.get("/metrics").text


def test_author_fixing_rejected_work_resubmits_it(api, live_server):
    project, (task,) = project_with_tasks(api, TEXT_CONFIG, 1)
    pid = project["id"]
    with member(api, live_server, pid, "annotator", "a") as a, member(api, live_server, pid, "reviewer", "rev") as rev:
        annotation = _submit(a, task, "Negative")
        _review(rev, annotation["id"], False, "no")
        r = a.patch(f"/api/annotations/{annotation['id']}/", json={"result": choice("Positive")})
        assert r.status_code == 200 and r.json()["review_status"] is None
        assert api.get(f"/api/tasks/{task}/").json()["state"] == "completed"
        assert _review(rev, annotation["id"], True).json()["task_state"] == "accepted"
        # Changing accepted work reopens its review.
        r = a.patch(f"/api/annotations/{annotation['id']}/", json={"result": choice("Neutral")})
        assert r.status_code == 200 and r.json()["review_status"] is None
        assert api.get(f"/api/tasks/{task}/").json()["state"] == "completed"
        # A lead-time-only change by the author keeps the verdict.
        _review(rev, annotation["id"], True)
        assert (
            a.patch(f"/api/annotations/{annotation['id']}/", json={"lead_time": 9}).json()["review_status"]
            == "accepted"
        )


def test_reviewing_an_unfinished_task_is_a_409_naming_the_allowed_moves(api, live_server):
    project, (task,) = project_with_tasks(api, TEXT_CONFIG, 1, overlap=2)
    pid = project["id"]
    with member(api, live_server, pid, "annotator", "a") as a, member(api, live_server, pid, "reviewer", "rev") as rev:
        annotation = _submit(a, task)  # 1 of 2 wanted: the task is in progress
        r = _review(rev, annotation["id"], True)
        assert r.status_code == 409
        body = r.json()
        assert body["current_state"] == "in_progress" and body["allowed"] == ["completed", "skipped", "new"]
        assert "'in_progress' cannot move to 'accepted'" in body["detail"]
        assert "completed, skipped, new" in body["detail"]
        assert api.get(f"/api/annotations/{annotation['id']}/").json()["review_status"] is None


def test_who_may_review(api, live_server):
    project, (task,) = project_with_tasks(api, TEXT_CONFIG, 1)
    pid = project["id"]
    with member(api, live_server, pid, "annotator", "a") as a, member(api, live_server, pid, "reviewer", "rev") as rev:
        annotation = _submit(a, task)
        r = _review(a, annotation["id"], True)
        assert r.status_code == 403 and "reviewer role" in r.json()["detail"]
        own = _submit(rev, task)
        r = _review(rev, own["id"], True)
        assert r.status_code == 403 and "own annotations" in r.json()["detail"]
        skipped = a.post(f"/api/tasks/{task}/skip").json()
        r = _review(rev, skipped["id"], False)
        assert r.status_code == 400 and "skip" in r.json()["detail"]
    assert _review(api, 999, True).status_code == 404
    r = api.post(f"/api/annotations/{annotation['id']}/review", json={"verdict": "yes"})
    assert r.status_code == 400 and "accepted" in r.json()["validation_errors"]


def test_review_required_counts_a_task_only_once_accepted(api, live_server):
    project, (task,) = project_with_tasks(api, TEXT_CONFIG, 1, review_required=True)
    pid = project["id"]
    with member(api, live_server, pid, "annotator", "a") as a, member(api, live_server, pid, "reviewer", "rev") as rev:
        annotation = _submit(a, task)
        t = api.get(f"/api/tasks/{task}/").json()
        assert t["state"] == "completed" and t["is_labeled"] is False
        assert api.get(f"/api/projects/{pid}/").json()["finished_task_number"] == 0
        _review(rev, annotation["id"], True)
        t = api.get(f"/api/tasks/{task}/").json()
        assert t["state"] == "accepted" and t["is_labeled"] is True
        assert api.get(f"/api/projects/{pid}/").json()["finished_task_number"] == 1
