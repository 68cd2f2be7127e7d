"""The web app in headless Chromium (Debian's `chromium`, driven by Python Playwright) against a
real server, on SQLite and PostgreSQL. One browser per test session, a fresh context (cookies,
storage) per user; screenshots of each view are kept as the run's artifacts under
.cache/test-artifacts/web/ (ignored by git).
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT
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
READY = "#editor[data-ready]:not([data-ready=''])"


# One browser per test file, not per session: Playwright's sync API marks its event loop as the
# main thread's running loop while it lives, and every pytest-asyncio test that the same worker
# runs after it would fail with "Runner.run() cannot be called from a running event loop".
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    executable = require_executable("chromium", "Debian package `chromium`; `make test` installs it as root")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where each view's screenshot is kept after the run: .cache/ is ignored by git, and unlike
    pytest's own temporary directories it is not rotated away by other runs on the machine."""
    path = ROOT / ".cache" / "test-artifacts" / "web"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class WebUser:
    """One signed-in person: a browser context of their own and their page."""

    base: str
    page: Any
    shots: Path
    prefix: str
    csp_blocked: list[str] = field(default_factory=list)  # what the page's policy refused
    page_errors: list[str] = field(default_factory=list)  # uncaught exceptions in the page
    expected_errors: tuple[str, ...] = ()  # parts of the messages a test provokes on purpose

    def sign_in(self, username: str, password: str) -> None:
        self.page.goto(f"{self.base}/#/login")
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        self.shot("sign-in")
        self.page.click("#login button")
        self.page.wait_for_selector("#project-list, #view > p")

    def open(self, hash_path: str, ready: str = READY) -> None:
        url = f"{self.base}/{hash_path}"
        if self.page.url == url:
            self.page.reload()  # the same address with a hash is no navigation
        else:
            self.page.goto(url)
        self.page.wait_for_selector(ready)

    def shot(self, name: str) -> Path:
        path = self.shots / f"{self.prefix}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 5000
        return path

    def result(self) -> list[dict[str, Any]]:
        """What the editor would submit now (through the app's adapter)."""
        return self.page.evaluate("window.kubelabelPage.editor.result()")

    def wait_past(self, task_id: int) -> None:
        """Wait until the editor shows another task than `task_id`, or the queue's end."""
        # Functions, not expressions: the page's CSP forbids eval, which Playwright uses for expressions.
        self.page.wait_for_function(
            "(id) => document.querySelector('#done')"
            " || !['', id].includes(document.querySelector('#editor').dataset.ready)",
            arg=str(task_id),
        )

    def task_id(self) -> int:
        return int(self.page.get_attribute("#editor", "data-ready"))

    def choose(self, choice: str) -> None:
        """Tick a choice of a Choices control."""
        self.page.click(f"#editor label:has(input[name='{choice}'])")

    def click_text(self, text: str) -> None:
        """Click the editor's element showing exactly `text` (a label of a Labels control)."""
        self.page.locator("#editor").get_by_text(text, exact=True).first.click()

    def click_button(self, text: str) -> None:
        self.page.locator("#editor button", has_text=re.compile(f"^{text}$")).first.click()


@pytest.fixture
def web(chromium: Any, live_server: Any, screenshots: Path, request: pytest.FixtureRequest) -> Any:
    """web(name) -> a WebUser in a fresh browser context; page errors and CSP violations fail the test."""
    contexts: list[Any] = []
    users: list[WebUser] = []
    test = request.node.name.replace("[", "-").rstrip("]")

    def new(name: str) -> WebUser:
        context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        user = WebUser(live_server.url, page, screenshots, f"{test}-{name}")
        users.append(user)
        page.on("pageerror", lambda exc: user.page_errors.append(str(exc)))
        page.on("console", lambda m: "Content Security Policy" in m.text and user.csp_blocked.append(m.text))
        return user

    yield new
    for context in contexts:
        context.close()
    errors: list[str] = []
    # An exception in the page, or anything its Content-Security-Policy refused, fails the test
    # unless the test provoked it.
    for user in users:
        found = user.page_errors + user.csp_blocked
        errors += [f"{user.prefix}: {m}" for m in found if not any(part in m for part in user.expected_errors)]
    assert errors == [], errors


def create_user(api: httpx.Client, username: str, password: str, role: str = "annotator") -> dict[str, Any]:
    r = api.post("/api/users/", json={"username": username, "password": password, "role": role})
    assert r.status_code == 201, r.text
    return r.json()


def add_member(api: httpx.Client, project: int, user: int, role: str) -> None:
    r = api.post(f"/api/projects/{project}/members/", json={"user": user, "role": role})
    assert r.status_code == 201, r.text


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A one-colour PNG (no imaging library needed)."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def png_pixels(data: bytes) -> list[tuple[int, ...]]:
    """The pixels of an 8-bit RGB or RGBA PNG (a browser's screenshot), undoing each row's filter."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        kind, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = row[i - channels] if i >= channels else 0
            up, corner = prev[i], prev[i - channels] if i >= channels else 0
            if kind == 1:
                row[i] = (row[i] + left) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + up) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                row[i] = (row[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(row)
        prev = row
    return [tuple(row[x * channels : x * channels + 3]) for row in rows for x in range(width)]
