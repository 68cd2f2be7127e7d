"""Setting passwords outside the API (KUBELABEL_ADMIN_PASSWORD, the command line), the cookie's
Secure flag behind a proxy, and the one-answer rule of password checks."""

from __future__ import annotations

import io
import logging
import threading
from contextlib import closing
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from api_server.auth import passwords
from api_server.bootstrap import bootstrap
from api_server.db.migrate import upgrade
from api_server.db.models import User
from api_server.db.session import make_engine, make_session_factory
from api_server.server import proxy_options
from api_server.settings import get_settings
from kubelabel_cli.main import main as cli_main
from tests.support.apiserver import ADMIN_TOKEN, LiveServer, make_settings
from tests.support.databases import sqlite_url
from tests.support.net import free_port

PASSWORD = "correct horse battery staple"


def login(url: str, username: str, password: str, **kwargs: Any) -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(base_url=url, timeout=60)
    return client, client.post("/api/auth/login", json={"username": username, "password": password}, **kwargs)


def admin_hash(factory: Any, username: str = "admin") -> str | None:
    with factory() as session:
        return session.scalar(select(User.password_hash).where(User.username == username))


# --- KUBELABEL_ADMIN_PASSWORD --------------------------------------------------------------


def test_admin_password_is_set_idempotently(server_pool, caplog):
    caplog.set_level(logging.DEBUG)
    server = server_pool.new("sqlite", KUBELABEL_ADMIN_PASSWORD="first admin password")
    client, r = login(server.url, "admin", "first admin password")
    with closing(client):
        assert r.status_code == 200 and r.json()["user"]["role"] == "admin"
        with server.client() as by_token:  # the token of KUBELABEL_ADMIN_TOKEN still works, for the same user
            assert by_token.get("/api/current-user/whoami").json()["id"] == r.json()["user"]["id"]

        # A restart with the same password changes nothing: same hash, the session lives on.
        stored = admin_hash(server.session_factory)
        bootstrap(server.session_factory, server.settings)
        assert admin_hash(server.session_factory) == stored
        assert client.get("/api/current-user/whoami").status_code == 200

        # A restart with another password replaces it, and ends the sessions of the old one.
        changed = server.settings.model_copy(update={"admin_password": SecretStr("second one!")})
        bootstrap(server.session_factory, changed)
        assert admin_hash(server.session_factory) != stored
        assert client.get("/api/current-user/whoami").status_code == 401
    assert login(server.url, "admin", "first admin password")[1].status_code == 401
    assert login(server.url, "admin", "second one!")[1].status_code == 200
    assert "first admin password" not in caplog.text and "second one!" not in caplog.text


def test_admin_password_without_a_token_makes_the_admin(tmp_path):
    url = sqlite_url(tmp_path)
    upgrade(url)
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine)
        settings = make_settings(url, tmp_path, KUBELABEL_ADMIN_TOKEN=None, KUBELABEL_ADMIN_PASSWORD="only a password")
        for _ in range(2):
            bootstrap(factory, settings)
        with factory() as session:
            users = list(session.scalars(select(User)))
        assert [(u.username, u.role) for u in users] == [("admin", "admin")]
        assert passwords.verify(users[0].password_hash, "only a password")
    finally:
        engine.dispose()


def test_a_too_short_admin_password_stops_the_start_with_one_line(tmp_path):
    url = sqlite_url(tmp_path)
    upgrade(url)
    engine = make_engine(url)
    try:
        settings = make_settings(url, tmp_path, KUBELABEL_ADMIN_PASSWORD="short")
        with pytest.raises(SystemExit) as stopped:
            bootstrap(make_session_factory(engine), settings)
        assert str(stopped.value) == "KUBELABEL_ADMIN_PASSWORD: must be at least 8 characters"
    finally:
        engine.dispose()


def test_limits_hold_while_redis_is_down(server_pool, caplog):
    """An unreachable Redis: the process counts by itself and says so, sign-in still works."""
    caplog.set_level(logging.WARNING, logger="api_server.auth.ratelimit")
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    server = server_pool.new("sqlite", REDIS_URL=nowhere, KUBELABEL_INPROCESS_JOBS="always")
    with server.client() as admin:
        assert admin.post("/api/users/", json={"username": "rita", "password": PASSWORD}).status_code == 201
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.post("/api/auth/login", json={"username": "rita", "password": PASSWORD}).status_code == 200
        login = {"username": "rita", "password": "guess"}
        assert [client.post("/api/auth/login", json=login).status_code for _ in range(6)] == [401] * 5 + [429]
    assert "Redis failed" in caplog.text


# --- the command line ------------------------------------------------------------------------


@pytest.fixture
def cli(live_server, monkeypatch, capsys):
    """`kubelabel ...` in-process on the live server's database: (rc, stdout, stderr)."""
    monkeypatch.setenv("DATABASE_URL", live_server.database_url)
    monkeypatch.setenv("KUBELABEL_DATA_DIR", str(live_server.data_dir))
    get_settings.cache_clear()
    live_server.app.state.login_limiter = None

    def run(*argv: str, stdin: str | None = None, prompts: list[str] | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        answers = iter(prompts or [])
        monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
        capsys.readouterr()
        rc = cli_main(list(argv))
        captured = capsys.readouterr()
        return rc, captured.out, captured.err

    yield run
    get_settings.cache_clear()


def test_cli_create_and_passwd(live_server, cli):
    rc, out, err = cli("user", "create", "bob", "--password-stdin", stdin=PASSWORD + "\n")
    assert rc == 0, out
    token = out.strip()
    assert len(token) == 40 and PASSWORD not in out + err
    client, r = login(live_server.url, "bob", PASSWORD)
    with closing(client):
        assert r.status_code == 200
        with live_server.client(token=token) as by_token:
            assert by_token.get("/api/current-user/whoami").json()["username"] == "bob"

        rc, out, _ = cli("user", "passwd", "bob", prompts=["a new password", "a new password"])
        assert rc == 0 and "sessions have ended" in out
        assert client.get("/api/current-user/whoami").status_code == 401  # signed out by the change
    assert login(live_server.url, "bob", PASSWORD)[1].status_code == 401
    assert login(live_server.url, "bob", "a new password")[1].status_code == 200

    rc, out, _ = cli("user", "passwd", "bob", prompts=["one password", "another one"])
    assert rc == 2 and "do not match" in out
    rc, out, err = cli("user", "passwd", "bob", "--password", "short")
    assert rc == 2 and "password: must be at least 8 characters" in out
    assert "visible to other users" in err  # a password in argv is warned about
    rc, out, err = cli("user", "create", "carl", "--password", "given in argv")
    assert rc == 0 and "visible to other users" in err
    assert login(live_server.url, "carl", "given in argv")[1].status_code == 200
    rc, out, _ = cli("user", "create", "dana", "--password", stdin="", prompts=["typed twice", "typed twice"])
    assert rc == 0
    assert login(live_server.url, "dana", "typed twice")[1].status_code == 200
    rc, out, _ = cli("user", "passwd", "nobody", "--password-stdin", stdin="whatever1\n")
    assert rc == 2 and "no user named 'nobody'" in out


# --- the Secure flag and client addresses behind a proxy -------------------------------------------


class ProxiedServer(LiveServer):
    """A live server run the way `kubelabel serve` runs uvicorn (proxy_options from the settings)."""

    def uvicorn_options(self) -> dict[str, Any]:
        return super().uvicorn_options() | proxy_options(self.settings)


@pytest.fixture
def proxied(tmp_path_factory):
    started: list[ProxiedServer] = []

    def start(**settings: Any) -> ProxiedServer:
        data_dir = tmp_path_factory.mktemp("proxied")
        url = sqlite_url(data_dir)
        values = {"KUBELABEL_LOGIN_MAX_FAILURES": 1, **settings}
        server = ProxiedServer("sqlite", url, data_dir, make_settings(url, data_dir, **values))
        started.append(server.start())
        with server.client() as admin:
            assert admin.post("/api/users/", json={"username": "pat", "password": PASSWORD}).status_code == 201
        return server

    yield start
    for server in started:
        server.stop()


def secure(response: httpx.Response) -> bool:
    return "secure" in {p.strip().lower() for p in response.headers["set-cookie"].split(";")}


def test_secure_cookie_only_over_tls_as_a_trusted_proxy_reports_it(proxied):
    https = {"X-Forwarded-Proto": "https"}
    untrusting = proxied()
    r = login(untrusting.url, "pat", PASSWORD, headers=https)[1]
    assert r.status_code == 200 and not secure(r)  # nobody said to believe the header
    trusting = proxied(KUBELABEL_FORWARDED_ALLOW_IPS="127.0.0.1")
    r = login(trusting.url, "pat", PASSWORD, headers=https)[1]
    assert r.status_code == 200 and secure(r)
    r = login(trusting.url, "pat", PASSWORD)[1]
    assert r.status_code == 200 and not secure(r)  # plain HTTP through the proxy
    logout = httpx.post(
        f"{trusting.url}/api/auth/logout",
        headers={**https, "X-CSRFToken": r.json()["csrf_token"]},
        cookies={"kubelabel_session": r.cookies["kubelabel_session"]},
    )
    assert logout.status_code == 204 and secure(logout)


def test_a_forged_forwarded_for_does_not_dodge_the_address_limit(proxied):
    """With KUBELABEL_LOGIN_MAX_FAILURES=1 an address may fail 4 times."""

    def spray(server: ProxiedServer) -> list[int]:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            return [
                client.post(
                    "/api/auth/login",
                    json={"username": f"user{i}", "password": "guess"},
                    headers={"X-Forwarded-For": f"203.0.113.{i}"},
                ).status_code
                for i in range(5)
            ]

    assert spray(proxied()) == [401] * 4 + [429]  # one address, whatever the header says
    assert spray(proxied(KUBELABEL_FORWARDED_ALLOW_IPS="127.0.0.1")) == [401] * 5  # a trusted proxy's clients


# --- one answer ----------------------------------------------------------------------------------


def test_a_missing_password_costs_a_full_verification(monkeypatch):
    calls: list[str] = []
    real = passwords._HASHER

    class Spy:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def verify(self, stored: str, password: str) -> bool:
            calls.append(stored)
            return real.verify(stored, password)

    monkeypatch.setattr(passwords, "_HASHER", Spy())
    stored = passwords.hash_password(PASSWORD)
    assert passwords.verify(stored, PASSWORD) is True
    assert passwords.verify(stored, "wrong") is False
    assert passwords.verify(None, PASSWORD) is False
    assert passwords.verify("not a hash", PASSWORD) is False
    assert len(calls) == 4 and calls[2].startswith("$argon2id$")  # the dummy hash, fully checked
    assert passwords.problem("short") and passwords.problem("x" * 1025) and passwords.problem(PASSWORD) is None


def test_token_only_admin_and_a_wrong_token_are_unchanged(live_server):
    with live_server.client() as admin:
        assert admin.get("/api/current-user/whoami").json()["username"] == "admin"
    with live_server.client(token="not-" + ADMIN_TOKEN) as wrong:
        r = wrong.get("/api/current-user/whoami")
        assert r.status_code == 401 and r.json()["detail"] == "invalid API token"


def test_at_most_two_password_checks_run_at_once(monkeypatch):
    """Each takes 64 MiB: a burst of sign-ins queues rather than taking the pod's memory."""
    real = passwords._HASHER
    running, peak, lock = [0], [0], threading.Lock()

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def verify(self, stored: str, password: str) -> bool:
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            try:
                return real.verify(stored, password)
            finally:
                with lock:
                    running[0] -= 1

    stored = passwords.hash_password(PASSWORD)
    monkeypatch.setattr(passwords, "_HASHER", Counting())
    threads = [threading.Thread(target=passwords.verify, args=(stored, PASSWORD)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 2
