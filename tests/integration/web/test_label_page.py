"""The annotation web page, driven in headless Chromium against a real server."""

from __future__ import annotations

import pytest

from tests.conftest import TEXT_CONFIG
from tests.support.apiserver import ADMIN_TOKEN
from tests.support.services import require_executable

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page():
    chromium = require_executable("chromium", "Debian package `chromium`; `make test` installs it as root")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
def test_annotator_labels_and_skips_in_the_browser(live_server, api, browser_page, tmp_path):
    project = api.post("/api/projects/", json={"title": "Web", "label_config": TEXT_CONFIG}).json()
    imported = api.post(f"/api/projects/{project['id']}/import", json=[{"text": "first review"}, {"text": "second"}])
    assert imported.status_code == 201, imported.text

    page = browser_page
    page.goto(f"{live_server.url}/")
    page.fill("#token", ADMIN_TOKEN)
    page.click("#login button")
    page.wait_for_selector("#objects pre")
    assert page.inner_text("#objects pre") == "first review"
    assert page.inner_text("#whoami").startswith("admin")

    page.check("input[value=Positive]")
    page.click("#submit")
    page.wait_for_function("document.querySelector('#objects pre').textContent === 'second'")
    assert "1 of 2 tasks labeled" in page.inner_text("#progress")

    page.click("#skip")
    page.wait_for_function("document.querySelector('#message').textContent.includes('No more tasks')")
    page.screenshot(path=str(tmp_path / "page.png"))
    assert (tmp_path / "page.png").stat().st_size > 1000

    tasks = api.get(f"/api/projects/{project['id']}/tasks/").json()
    tasks = tasks["tasks"] if isinstance(tasks, dict) and "tasks" in tasks else tasks
    by_text = {t["data"]["text"]: t for t in tasks}
    first = api.get(f"/api/tasks/{by_text['first review']['id']}/annotations/").json()
    assert [a["result"][0]["value"]["choices"] for a in first] == [["Positive"]]
    second = api.get(f"/api/tasks/{by_text['second']['id']}/annotations/").json()
    assert [a["was_cancelled"] for a in second] == [True]


def test_unknown_asset_is_404(api):
    assert api.get("/label/../settings.py").status_code == 404
    assert api.get("/label/app.js").status_code == 200
