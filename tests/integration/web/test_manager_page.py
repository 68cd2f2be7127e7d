"""The manager's overview in the browser: progress and per-annotator counts with agreement, a CSV
import whose bad row is named, a JSON export downloaded through the page, members' roles, sign-out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TEXT_CONFIG
from tests.integration.web.conftest import add_member, create_user

OVERVIEW = "#progress-counts"


def choice(value: str) -> list[dict]:
    return [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [value]}}]


@pytest.mark.parametrize("live_server", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_manager_sees_progress_imports_exports_and_sets_roles(live_server, api, web):
    project = api.post(
        "/api/projects/", json={"title": "Moods", "label_config": TEXT_CONFIG, "maximum_annotations": 2}
    ).json()
    pid = project["id"]
    assert api.post(f"/api/projects/{pid}/import", json=[{"text": "sunny"}, {"text": "rainy"}]).status_code == 201
    meg = create_user(api, "meg", "meg-secret-pw1", role="manager")
    a1 = create_user(api, "a1", "a1-secret-pw1")
    a2 = create_user(api, "a2", "a2-secret-pw1")
    add_member(api, pid, meg["id"], "manager")
    for person in (a1, a2):
        add_member(api, pid, person["id"], "annotator")
    tasks = {t["data"]["text"]: t["id"] for t in api.get(f"/api/projects/{pid}/tasks/").json()}
    # a1 and a2 agree on "sunny" and not on "rainy".
    for person, sunny, rainy in ((a1, "Positive", "Negative"), (a2, "Positive", "Positive")):
        for text, value in (("sunny", sunny), ("rainy", rainy)):
            body = {"result": choice(value), "completed_by": person["id"]}
            assert api.post(f"/api/tasks/{tasks[text]}/annotations/", json=body).status_code == 201

    manager = web("manager")
    manager.sign_in("meg", "meg-secret-pw1")
    page = manager.page
    page.click(f"tr[data-project='{pid}'] a:text('Overview')")
    page.wait_for_selector(OVERVIEW)
    counts = {k: page.inner_text(f"dd[data-count='{k}']") for k in ("total", "done", "review", "skipped")}
    assert counts == {"total": "2", "done": "2", "review": "2", "skipped": "0"}
    rows = {name: page.locator(f"tr[data-annotator='{name}'] td").all_inner_texts()[1:] for name in ("a1", "a2")}
    assert rows == {name: ["2", "0", "0", "0", "50% of 2"] for name in ("a1", "a2")}
    manager.shot("overview")

    # A CSV with a bad row: nothing imported, the row named.
    bad = "text,score\nfoggy,1\nwindy,2,extra\n"
    page.set_input_files("#import-files", files=[{"name": "moods.csv", "mimeType": "text/csv", "buffer": bad.encode()}])
    page.click("#import button")
    page.wait_for_selector("#import-result.error")
    assert "moods.csv: row 2" in page.inner_text("#import-result")
    assert "has 3 values, but the header has 2 columns" in page.inner_text("#import-result")
    manager.shot("import-error")
    good = {"name": "moods.csv", "mimeType": "text/csv", "buffer": b"text,score\nfoggy,1\n"}
    page.set_input_files("#import-files", files=[good])
    page.click("#import button")
    page.wait_for_function("() => document.querySelector('#import-result').textContent.startsWith('Imported')")
    assert page.inner_text("#import-result") == "Imported 1 tasks"
    assert len(api.get(f"/api/projects/{pid}/tasks/").json()) == 3

    # JSON export, downloaded by the browser from the page's link (the session cookie authenticates it).
    with page.expect_download() as download:
        page.click("a[data-format='JSON']")
    exported = json.loads(Path(download.value.path()).read_text())
    by_text = {t["data"]["text"]: t for t in exported}
    assert set(by_text) == {"sunny", "rainy"}  # annotated tasks, as Label Studio exports by default
    assert sorted(a["result"][0]["value"]["choices"][0] for a in by_text["rainy"]["annotations"]) == [
        "Negative",
        "Positive",
    ]

    # Members and their roles: a2 becomes a reviewer through the page.
    shown = page.locator("#members tr").evaluate_all("(rows) => rows.map((r) => r.dataset.member)")
    assert sorted(shown) == ["a1", "a2", "admin", "meg"]  # the creator (admin) is a manager too
    with page.expect_response(lambda r: r.url.endswith(f"/members/{a2['id']}/") and r.status == 200):
        page.select_option(f"#members select[data-user='{a2['id']}']", "reviewer")
    roles = {m["username"]: m["role"] for m in api.get(f"/api/projects/{pid}/members/").json()}
    assert roles == {"admin": "manager", "meg": "manager", "a1": "annotator", "a2": "reviewer"}

    # Sign-out ends the session on the server: the same browser is refused afterwards.
    page.click("#signout")
    page.wait_for_selector("#login")
    assert page.evaluate("async () => (await fetch('/api/auth/session')).status") == 401
