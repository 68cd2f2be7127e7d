"""Sign-in with passwords: session cookies, CSRF, sign-out, limits, against the real server.

The cookie is an alternative to the API token for the web app: reads work with it alone, writes
also need the session's CSRF token in X-CSRFToken, and signing out (or a password change) ends
the session on the server, so a copied cookie stops working too.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any

import httpx
import pytest

from tests.conftest import TEXT_CONFIG
from tests.support.apiserver import ADMIN_TOKEN, LiveServer

PASSWORD = "correct horse battery staple"
# The limits count in the app (or Redis), not in the database: one backend is enough for them.
SQLITE_ONLY = pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
CHOICE = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]


@pytest.fixture
def server(live_server: LiveServer) -> LiveServer:
    """The shared server with fresh sign-in counts (they live in the app, not in the tables)."""
    live_server.app.state.login_limiter = None
    return live_server


def make_user(admin: httpx.Client, username: str, role: str = "annotator", password: str = PASSWORD) -> dict:
    r = admin.post("/api/users/", json={"username": username, "role": role, "password": password})
    assert r.status_code == 201, r.text
    return r.json()


def sign_in(server: LiveServer, username: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
    """A client holding only the session cookie (no token), and the session's CSRF token."""
    client = httpx.Client(base_url=server.url, timeout=60)
    r = client.post("/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return client, r.json()["csrf_token"]


def set_cookie_header(response: httpx.Response) -> str:
    return response.headers.get("set-cookie", "")


def test_login_sets_a_session_cookie_that_reads_work_with(server, api):
    alice = make_user(api, "alice")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.get("/api/current-user/whoami").status_code == 401
        r = client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["user"]["id"] == alice["id"] and body["user"]["username"] == "alice"
        assert len(body["csrf_token"]) >= 32 and body["expires_at"]
        cookie = set_cookie_header(r)
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert cookie.startswith("kubelabel_session=")
        assert {"httponly", "path", "max-age"} <= attributes
        assert "samesite=lax" in cookie.lower() and "path=/" in cookie.lower()
        assert "max-age=43200" in cookie.lower()  # KUBELABEL_SESSION_HOURS, 12 by default
        assert "secure" not in attributes  # plain HTTP here
        assert "authorization" not in {k.lower() for k in client.headers}

        assert client.get("/api/current-user/whoami").json()["username"] == "alice"
        session = client.get("/api/auth/session")
        assert session.status_code == 200
        assert session.json()["user"]["username"] == "alice"
        assert session.json()["csrf_token"] == body["csrf_token"]

    # The same answer for a token: who it is, and no CSRF token (none is needed).
    assert api.get("/api/auth/session").json() == {
        "user": api.get("/api/current-user/whoami").json(),
        "csrf_token": None,
        "expires_at": None,
    }


def test_login_takes_a_form_too(server, api):
    make_user(api, "formuser")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        r = client.post("/api/auth/login", data={"username": "formuser", "password": PASSWORD})
        assert r.status_code == 200, r.text
        assert client.get("/api/current-user/whoami").json()["username"] == "formuser"


def test_a_sign_in_posted_by_another_sites_page_is_refused(server, api):
    """Login CSRF: another site's form would sign the visitor in to the attacker's account."""
    make_user(api, "olga")
    form = {"username": "olga", "password": PASSWORD}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        r = client.post("/api/auth/login", data=form, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and "another origin" in r.json()["detail"]
        assert "kubelabel_session" not in client.cookies
        r = client.post("/api/auth/login", data=form, headers={"Origin": server.url})  # the app's own page
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"


def test_bad_login_input_is_a_4xx_naming_the_field(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        r = client.post("/api/auth/login", json={"username": "alice"})
        assert r.status_code == 400 and "password" in r.json()["validation_errors"]
        r = client.post("/api/auth/login", content=b"username=alice", headers={"content-type": "text/plain"})
        assert r.status_code == 415
        r = client.post("/api/auth/login", content=b'{"username": "a",', headers={"content-type": "application/json"})
        assert r.status_code == 400 and "malformed JSON" in r.json()["detail"]
        r = client.post("/api/auth/login", json={"username": "a\u0000", "password": "x"})
        assert r.status_code == 400 and "username" in r.json()["validation_errors"]


def test_cookie_writes_need_the_csrf_token(server, api):
    make_user(api, "manny", role="manager")
    client, csrf = sign_in(server, "manny")
    with closing(client):
        project = {"title": "by cookie", "label_config": TEXT_CONFIG}
        refused = client.post("/api/projects/", json=project)
        assert refused.status_code == 403
        assert "X-CSRFToken" in refused.json()["detail"]
        wrong = client.post("/api/projects/", json=project, headers={"X-CSRFToken": "0" * len(csrf)})
        assert wrong.status_code == 403
        assert api.get("/api/projects/").json()["count"] == 0  # nothing was written
        created = client.post("/api/projects/", json=project, headers={"X-CSRFToken": csrf})
        assert created.status_code == 201, created.text
        pid = created.json()["id"]
        for method in ("PATCH", "DELETE"):
            body = {"title": "renamed"} if method == "PATCH" else None
            r = client.request(method, f"/api/projects/{pid}/", json=body)
            assert r.status_code == 403, (method, r.text)
        assert (
            client.patch(f"/api/projects/{pid}/", json={"title": "renamed"}, headers={"X-CSRFToken": csrf}).json()[
                "title"
            ]
            == "renamed"
        )
        # Another session's CSRF token is not this one's.
        other, other_csrf = sign_in(server, "manny")
        with closing(other):
            assert other_csrf != csrf
            assert (
                client.patch(
                    f"/api/projects/{pid}/", json={"title": "x"}, headers={"X-CSRFToken": other_csrf}
                ).status_code
                == 403
            )


def test_token_requests_need_no_csrf_token(server, api):
    # The admin's client sends its token and no X-CSRFToken: scripts and the SDK are unchanged.
    assert api.post("/api/projects/", json={"title": "by token", "label_config": TEXT_CONFIG}).status_code == 201
    make_user(api, "both", role="manager")
    client, _ = sign_in(server, "both")
    with closing(client):
        # A token wins over a cookie sent beside it: no CSRF token needed, and it is the token's user.
        r = client.post(
            "/api/projects/",
            json={"title": "token and cookie", "label_config": TEXT_CONFIG},
            headers={"Authorization": f"Token {ADMIN_TOKEN}"},
        )
        assert r.status_code == 201 and r.json()["created_by"]["username"] == "admin"


def test_a_session_after_sign_out_is_refused(server, api):
    make_user(api, "leaver")
    client, csrf = sign_in(server, "leaver")
    cookie = client.cookies["kubelabel_session"]
    with closing(client):
        assert client.post("/api/auth/logout").status_code == 403  # a live session signs out with its CSRF token
        assert client.get("/api/current-user/whoami").status_code == 200
        r = client.post("/api/auth/logout", headers={"X-CSRFToken": csrf})
        assert r.status_code == 204
        assert "kubelabel_session=" in set_cookie_header(r) and "max-age=0" in set_cookie_header(r).lower()
        assert client.get("/api/current-user/whoami").status_code == 401
    # The old cookie, replayed by someone who kept a copy, is dead on the server too.
    with httpx.Client(base_url=server.url, cookies={"kubelabel_session": cookie}, timeout=60) as replay:
        r = replay.get("/api/current-user/whoami")
        assert r.status_code == 401 and "session has ended" in r.json()["detail"]
        assert replay.get("/api/auth/session").status_code == 401
        assert replay.post("/api/projects/", json={"title": "x"}, headers={"X-CSRFToken": csrf}).status_code == 401
        assert replay.post("/api/auth/logout").status_code == 204  # signing out again is harmless


def test_a_password_change_ends_the_users_sessions(server, api):
    bob = make_user(api, "bob")
    client, _ = sign_in(server, "bob")
    with closing(client):
        assert client.get("/api/current-user/whoami").status_code == 200
        assert api.patch(f"/api/users/{bob['id']}/", json={"password": "a brand new password"}).status_code == 200
        assert client.get("/api/current-user/whoami").status_code == 401
    with httpx.Client(base_url=server.url, timeout=60) as fresh:
        assert fresh.post("/api/auth/login", json={"username": "bob", "password": PASSWORD}).status_code == 401
        ok = fresh.post("/api/auth/login", json={"username": "bob", "password": "a brand new password"})
        assert ok.status_code == 200


def test_a_deactivated_user_is_signed_out_and_cannot_sign_in(server, api):
    carol = make_user(api, "carol")
    client, _ = sign_in(server, "carol")
    with closing(client):
        assert api.patch(f"/api/users/{carol['id']}/", json={"is_active": False}).status_code == 200
        assert client.get("/api/current-user/whoami").status_code == 401
        r = client.post("/api/auth/login", json={"username": "carol", "password": PASSWORD})
        assert r.status_code == 401 and r.json()["detail"] == "wrong username or password"


@SQLITE_ONLY
def test_unknown_user_and_wrong_password_get_the_same_answer(server, api):
    make_user(api, "dave")
    tokenonly = api.post("/api/users/", json={"username": "tokenonly"}).json()
    assert tokenonly["id"]
    with httpx.Client(base_url=server.url, timeout=60) as client:
        answers = [
            client.post("/api/auth/login", json={"username": name, "password": "not the password"})
            for name in ("dave", "nobody", "tokenonly")
        ]
    assert {r.status_code for r in answers} == {401}
    assert len({r.text for r in answers}) == 1
    assert answers[0].json()["detail"] == "wrong username or password"


@SQLITE_ONLY
def test_five_wrong_passwords_in_a_row_are_refused_for_a_while(server, api):
    make_user(api, "erin")
    make_user(api, "frank")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for _ in range(5):
            r = client.post("/api/auth/login", json={"username": "erin", "password": "guess"})
            assert r.status_code == 401
        for password in ("guess", PASSWORD):  # locked: even the right password waits
            r = client.post("/api/auth/login", json={"username": "erin", "password": password})
            assert r.status_code == 429, r.text
            assert 1 <= int(r.headers["Retry-After"]) <= 30
            assert "too many failed sign-in attempts" in r.json()["detail"]
            assert "kubelabel_session" not in client.cookies
        # The lock is the username's: another user at the same address signs in.
        assert client.post("/api/auth/login", json={"username": "frank", "password": PASSWORD}).status_code == 200
        # An unknown username is counted just the same (a lock tells nothing about who exists).
        statuses = [
            client.post("/api/auth/login", json={"username": "ghost", "password": "guess"}).status_code
            for _ in range(6)
        ]
        assert statuses == [401] * 5 + [429]


@SQLITE_ONLY
def test_parallel_guesses_do_not_slip_past_the_limit(server, api):
    make_user(api, "gina")

    def guess(_: int) -> int:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            return client.post("/api/auth/login", json={"username": "gina", "password": "guess"}).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(guess, range(12)))
    assert sorted(statuses) == [401] * 5 + [429] * 7


@SQLITE_ONLY
def test_a_successful_sign_in_starts_the_count_afresh(server, api):
    make_user(api, "hank")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for _ in range(4):
            assert client.post("/api/auth/login", json={"username": "hank", "password": "typo"}).status_code == 401
        assert client.post("/api/auth/login", json={"username": "hank", "password": PASSWORD}).status_code == 200
        for _ in range(4):
            assert client.post("/api/auth/login", json={"username": "hank", "password": "typo"}).status_code == 401
        assert client.post("/api/auth/login", json={"username": "hank", "password": PASSWORD}).status_code == 200


@SQLITE_ONLY
def test_an_address_with_many_failures_is_refused(server, api):
    """Four times the per-user allowance from one address, spread over usernames, then 429."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        statuses = [
            client.post("/api/auth/login", json={"username": f"spray{i}", "password": "guess"}).status_code
            for i in range(21)
        ]
    assert statuses == [401] * 20 + [429]


def test_the_lock_ends_and_doubles_after_another_failure(server_pool):
    # The lock is taken as the last allowed attempt starts; a verification can take a second on a
    # busy machine, so the first wait is a few seconds and the checks leave room around it.
    server = server_pool.new("sqlite", KUBELABEL_LOGIN_LOCKOUT_SECONDS=4, KUBELABEL_LOGIN_MAX_FAILURES=2)
    with server.client() as admin, httpx.Client(base_url=server.url, timeout=60) as client:
        make_user(admin, "ivy")
        login = {"username": "ivy", "password": "guess"}
        assert [client.post("/api/auth/login", json=login).status_code for _ in range(3)] == [401, 401, 429]
        time.sleep(4.1)
        assert client.post("/api/auth/login", json=login).status_code == 401  # one more try after the lock
        r = client.post("/api/auth/login", json=login)
        assert r.status_code == 429 and 4 < int(r.headers["Retry-After"]) <= 8  # 4 s, doubled
        assert client.post("/api/auth/login", json={"username": "ivy", "password": PASSWORD}).status_code == 429


def test_redis_carries_the_counts_between_servers(server_pool, redis_prefix):
    from tests.support.services import REDIS_URL

    one = server_pool.new("sqlite", REDIS_URL=REDIS_URL, KUBELABEL_REDIS_PREFIX=redis_prefix)
    other = server_pool.new("sqlite", REDIS_URL=REDIS_URL, KUBELABEL_REDIS_PREFIX=redis_prefix)
    with one.client() as admin:
        make_user(admin, "jack")
    login = {"username": "jack", "password": "guess"}
    with httpx.Client(base_url=one.url, timeout=60) as a, httpx.Client(base_url=other.url, timeout=60) as b:
        statuses = [(a if i % 2 else b).post("/api/auth/login", json=login).status_code for i in range(5)]
        assert statuses == [401] * 5
        for client in (a, b):
            r = client.post("/api/auth/login", json=login)
            assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_a_viewer_signed_in_by_cookie_cannot_submit(server, api):
    project = api.post("/api/projects/", json={"title": "roles", "label_config": TEXT_CONFIG}).json()
    task = api.post("/api/tasks/", json={"project": project["id"], "data": {"text": "t"}}).json()
    for name, role in (("vera", "viewer"), ("anna", "annotator")):
        user = make_user(api, name)
        r = api.post(f"/api/projects/{project['id']}/members/", json={"user": user["id"], "role": role})
        assert r.status_code == 201, r.text
    viewer, viewer_csrf = sign_in(server, "vera")
    annotator, annotator_csrf = sign_in(server, "anna")
    with closing(viewer), closing(annotator):
        assert viewer.get(f"/api/tasks/{task['id']}/").status_code == 200
        r = viewer.post(
            f"/api/tasks/{task['id']}/annotations/", json={"result": CHOICE}, headers={"X-CSRFToken": viewer_csrf}
        )
        assert r.status_code == 403 and "annotator role" in r.json()["detail"]
        r = annotator.post(
            f"/api/tasks/{task['id']}/annotations/", json={"result": CHOICE}, headers={"X-CSRFToken": annotator_csrf}
        )
        assert r.status_code == 201, r.text
        assert r.json()["completed_by"] == annotator.get("/api/current-user/whoami").json()["id"]


def test_the_password_never_appears_in_responses_logs_or_the_schema(server, api, caplog):
    secret = "s3cret-that-must-not-leak"
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    def keep(r: httpx.Response) -> httpx.Response:
        seen.append(r.text + str(r.headers))
        return r

    user = keep(api.post("/api/users/", json={"username": "kim", "role": "manager", "password": secret})).json()
    assert "password" not in user and "password_hash" not in user
    keep(api.get(f"/api/users/{user['id']}/"))
    keep(api.get("/api/users/"))
    keep(api.patch(f"/api/users/{user['id']}/", json={"password": secret + "2", "first_name": "Kim"}))
    keep(api.post("/api/users/", json={"username": "short", "password": "x"}))  # too short: 400
    with httpx.Client(base_url=server.url, timeout=60) as client:
        keep(client.post("/api/auth/login", json={"username": "kim", "password": secret}))  # the old one: 401
        r = keep(client.post("/api/auth/login", json={"username": "kim", "password": secret + "2"}))
        assert r.status_code == 200
        keep(client.get("/api/auth/session"))
        keep(client.post("/api/auth/login", json={"username": "kim", "password": secret, "extra": 1}))
    schema = api.get("/api/schema").text
    assert seen and all(secret not in text for text in seen)
    assert secret not in schema
    assert secret not in caplog.text
    # The schema says the field is write-only and shows no example value for it.
    components = api.get("/api/schema").json()["components"]["schemas"]
    assert components["UserCreate"]["properties"]["password"]["writeOnly"] is True
    assert "password" not in components["UserPublic"]["properties"]
    short = api.post("/api/users/", json={"username": "short2", "password": "x"})
    assert short.status_code == 400 and "password" in short.json()["validation_errors"]


@SQLITE_ONLY
def test_a_burst_of_sign_ins_takes_two_request_threads_at_most(server, api, monkeypatch):
    """Sign-ins wait for a password-check slot on the event loop, not in the request threads
    (8 by default) that every other call needs: at most two are in the thread pool at once."""
    from api_server.auth import service

    real = service.login
    inside, peak, lock = [0], [0], threading.Lock()

    def counted(*args: Any, **kwargs: Any) -> Any:
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        try:
            time.sleep(0.2)  # long enough for the others to pile up
            return real(*args, **kwargs)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(service, "login", counted)

    def guess(i: int) -> int:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            return client.post("/api/auth/login", json={"username": f"burst{i}", "password": "guess"}).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(guess, range(10)))
        assert api.get("/api/current-user/whoami").status_code == 200
    assert statuses == [401] * 10
    assert peak[0] == 2
