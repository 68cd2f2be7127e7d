"""An annotator labels, skips and leaves a draft in the browser; a reviewer rejects one annotation and
it comes back to its annotator for rework. The API is then asked what was stored."""

from __future__ import annotations

import pytest

from tests.conftest import TEXT_CONFIG
from tests.integration.web.conftest import READY, add_member, create_user

TEXTS = ["great product", "awful service", "it was fine", "no idea"]


def tasks_by_text(api, project):
    tasks = api.get(f"/api/projects/{project}/tasks/").json()
    return {t["data"]["text"]: t for t in tasks}


@pytest.mark.parametrize("live_server", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_annotator_labels_skips_drafts_and_reworks_a_rejection(live_server, api, web):
    project = api.post(
        "/api/projects/",
        json={"title": "Reviews", "label_config": TEXT_CONFIG, "expert_instruction": "Pick the writer's mood."},
    ).json()
    pid = project["id"]
    assert api.post(f"/api/projects/{pid}/import", json=[{"text": t} for t in TEXTS]).status_code == 201
    ann = create_user(api, "ann", "ann-secret-pw1")
    rev = create_user(api, "rev", "rev-secret-pw1", role="reviewer")
    add_member(api, pid, ann["id"], "annotator")
    add_member(api, pid, rev["id"], "reviewer")

    annotator = web("annotator")
    annotator.sign_in("ann", "ann-secret-pw1")
    page = annotator.page
    assert page.inner_text("#whoami") == "ann (annotator)"
    annotator.shot("projects")
    page.click(f"tr[data-project='{pid}'] a:text('Label')")
    page.wait_for_selector(READY)
    assert page.inner_text("#instructions") == "Instructions\nPick the writer's mood."
    annotator.shot("label")

    # Task 1 by a click, task 2 by the editor's keyboard shortcut for the second choice.
    assert "great product" in page.inner_text("#editor")
    first = annotator.task_id()
    annotator.choose("Positive")
    annotator.click_button("Submit")
    annotator.wait_past(first)
    assert "awful service" in page.inner_text("#editor")
    second = annotator.task_id()
    page.keyboard.press("2")
    assert annotator.result()[0]["value"] == {"choices": ["Negative"]}
    annotator.click_button("Submit")
    annotator.wait_past(second)

    # Task 3: a choice, then leave; the autosaved draft comes back after a reload.
    assert "it was fine" in page.inner_text("#editor")
    third = annotator.task_id()
    with page.expect_response(lambda r: "/drafts" in r.url and r.request.method == "POST", timeout=15000) as saved:
        annotator.choose("Neutral")
    assert saved.value.status == 201
    page.reload()
    page.wait_for_selector(READY)
    assert annotator.task_id() == third
    assert page.inner_text("#draft-state") == "Draft restored"
    assert [r["value"] for r in annotator.result()] == [{"choices": ["Neutral"]}]
    assert page.locator("#editor .ant-checkbox-wrapper-checked").inner_text().startswith("Neutral")
    annotator.shot("draft-restored")
    annotator.click_button("Submit")
    annotator.wait_past(third)

    # Task 4: skipped; then the queue is empty and the page says so.
    assert "no idea" in page.inner_text("#editor")
    annotator.click_button("Skip")
    page.wait_for_selector("#done")
    assert "No more tasks" in page.inner_text("#done")
    assert page.inner_text("#progress") == "3 of 4 tasks labeled"
    annotator.shot("queue-empty")

    # The API holds exactly those results.
    by_text = tasks_by_text(api, pid)
    stored = {
        text: [(a["was_cancelled"], [r["value"] for r in a["result"]]) for a in by_text[text]["annotations"]]
        for text in TEXTS
    }
    assert stored == {
        "great product": [(False, [{"choices": ["Positive"]}])],
        "awful service": [(False, [{"choices": ["Negative"]}])],
        "it was fine": [(False, [{"choices": ["Neutral"]}])],
        "no idea": [(True, [])],
    }
    drafts = api.get(f"/api/tasks/{by_text['it was fine']['id']}/drafts/").json()
    assert drafts == []  # submitting took the draft

    # The reviewer rejects the first annotation with a comment and accepts the other two.
    reviewer = web("reviewer")
    reviewer.sign_in("rev", "rev-secret-pw1")
    reviewer.open(f"#/p/{pid}/review")
    assert reviewer.page.inner_text("#review-count") == "3 annotations awaiting review"
    assert "great product" in reviewer.page.inner_text("#editor")
    reviewer.shot("review")
    reviewer.page.fill("#review-comment-input", "It is sarcastic: read again")
    reviewer.page.click("#reject")
    for _ in range(2):
        reviewer.page.wait_for_function("() => /^[12] /.test(document.querySelector('#review-count').textContent)")
        shown = reviewer.task_id()
        reviewer.page.click("#accept")
        reviewer.wait_past(shown)
    reviewer.page.wait_for_selector("#done")

    by_text = tasks_by_text(api, pid)
    rejected = by_text["great product"]
    assert rejected["state"] == "rejected"
    assert rejected["annotations"][0]["review_status"] == "rejected"
    assert [by_text[t]["state"] for t in ("awful service", "it was fine")] == ["accepted", "accepted"]

    # Back with its annotator: listed for rework, with the reviewer's comment; an update resubmits it.
    annotator.open(f"#/p/{pid}/label", ready="#done")
    assert annotator.page.inner_text("#rework").startswith("Returned to you for rework")
    annotator.shot("rework-listed")
    annotator.page.click(f"#rework a:text('Task {rejected['id']}')")
    annotator.page.wait_for_selector(READY)
    assert annotator.page.inner_text("#review-comment").endswith("rejected: It is sarcastic: read again")
    annotator.choose("Negative")
    annotator.click_button("Update")
    annotator.page.wait_for_selector("#done")
    again = api.get(f"/api/annotations/{rejected['annotations'][0]['id']}/").json()
    assert (again["review_status"], again["result"][0]["value"]) == (None, {"choices": ["Negative"]})


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
def test_a_viewer_gets_no_editor_and_cannot_submit(live_server, api, web):
    project = api.post("/api/projects/", json={"title": "Read only", "label_config": TEXT_CONFIG}).json()
    api.post(f"/api/projects/{project['id']}/import", json=[{"text": "look, do not touch"}])
    viewer = create_user(api, "vic", "vic-secret-pw1", role="viewer")
    add_member(api, project["id"], viewer["id"], "viewer")
    user = web("viewer")
    user.sign_in("vic", "vic-secret-pw1")
    assert user.page.locator(f"tr[data-project='{project['id']}'] a").all_inner_texts() == []
    user.open(f"#/p/{project['id']}/label", ready="#message.error")
    assert "annotator role" in user.page.inner_text("#message")
    assert user.page.locator("#editor .lsf-editor, #editor button").count() == 0
    # Submitting through the page's own session is refused by the API too.
    status = user.page.evaluate(
        """async (task) => {
             const csrf = (await (await fetch('/api/auth/session')).json()).csrf_token;
             const response = await fetch(`/api/tasks/${task}/annotations/`, {method: 'POST',
               headers: {'Content-Type': 'application/json', 'X-CSRFToken': csrf}, body: JSON.stringify({result: []})});
             return response.status;
           }""",
        api.get(f"/api/projects/{project['id']}/tasks/").json()[0]["id"],
    )
    assert status == 403
