"""Project membership over HTTP and the command line; API tokens."""

from __future__ import annotations

import pytest

from api_server.settings import get_settings
from kubelabel_cli.main import main as cli_main
from tests.support.team import new_user, team


def test_add_list_change_remove(api, text_project):
    pid = text_project["id"]
    uid, _ = new_user(api, "bob")
    r = api.post(f"/api/projects/{pid}/members/", json={"user": uid, "role": "annotator"})
    assert r.status_code == 201, r.text
    assert r.json()["username"] == "bob" and r.json()["role"] == "annotator"

    members = api.get(f"/api/projects/{pid}/members/").json()
    assert {(m["username"], m["role"]) for m in members} == {("admin", "manager"), ("bob", "annotator")}

    r = api.post(f"/api/projects/{pid}/members/", json={"user": uid, "role": "viewer"})
    assert r.status_code == 409 and "already a member" in r.json()["detail"]
    r = api.patch(f"/api/projects/{pid}/members/{uid}/", json={"role": "reviewer"})
    assert r.status_code == 200 and r.json()["role"] == "reviewer"
    assert api.delete(f"/api/projects/{pid}/members/{uid}/").status_code == 204
    assert api.delete(f"/api/projects/{pid}/members/{uid}/").status_code == 404
    assert [m["username"] for m in api.get(f"/api/projects/{pid}/members/").json()] == ["admin"]


def test_invalid_memberships_are_named(api, text_project):
    pid = text_project["id"]
    uid, _ = new_user(api, "carol")
    r = api.post(f"/api/projects/{pid}/members/", json={"user": uid, "role": "admin"})
    assert r.status_code == 400 and "role" in r.json()["validation_errors"]
    assert "organisation role" in r.json()["detail"]
    r = api.post(f"/api/projects/{pid}/members/", json={"user": uid, "role": "boss"})
    assert r.status_code == 400 and "role" in r.json()["validation_errors"]
    r = api.post(f"/api/projects/{pid}/members/", json={"user": 9999, "role": "viewer"})
    assert r.status_code == 400 and r.json()["validation_errors"] == {"user": ["does not exist"]}
    assert api.get("/api/projects/9999/members/").status_code == 404


def test_the_last_manager_stays(api, text_project):
    pid = text_project["id"]
    admin_id = api.get("/api/current-user/whoami").json()["id"]
    r = api.patch(f"/api/projects/{pid}/members/{admin_id}/", json={"role": "viewer"})
    assert r.status_code == 409 and "last manager" in r.json()["detail"]
    assert api.delete(f"/api/projects/{pid}/members/{admin_id}/").status_code == 409
    uid, _ = new_user(api, "dave")
    api.post(f"/api/projects/{pid}/members/", json={"user": uid, "role": "manager"})
    assert api.delete(f"/api/projects/{pid}/members/{admin_id}/").status_code == 204


def test_managers_manage_members_others_do_not(api, live_server, text_project):
    pid = text_project["id"]
    with team(live_server, api, pid) as t:
        newcomer, _ = new_user(api, "erin")
        for role in ("viewer", "annotator", "reviewer", "outsider"):
            r = t[role].post(f"/api/projects/{pid}/members/", json={"user": newcomer, "role": "viewer"})
            assert r.status_code == 403, (role, r.text)
            assert "manager" in r.json()["detail"]
            r = t[role].patch(f"/api/projects/{pid}/members/{t.users['viewer']}/", json={"role": "manager"})
            assert r.status_code == 403
        assert t["viewer"].get(f"/api/projects/{pid}/members/").status_code == 200
        assert t["outsider"].get(f"/api/projects/{pid}/members/").status_code == 403
        r = t["manager"].post(f"/api/projects/{pid}/members/", json={"user": newcomer, "role": "annotator"})
        assert r.status_code == 201
        r = t["manager"].patch(f"/api/projects/{pid}/members/{newcomer}/", json={"role": "reviewer"})
        assert r.status_code == 200
        # Anyone may leave; the viewer's access ends with it.
        assert t["viewer"].delete(f"/api/projects/{pid}/members/{t.users['viewer']}/").status_code == 204
        assert t["viewer"].get(f"/api/projects/{pid}/").status_code == 403


def test_annotators_endpoint(api, live_server, text_project):
    pid = text_project["id"]
    with team(live_server, api, pid) as t:
        r = t["viewer"].get(f"/api/projects/{pid}/annotators/")
        assert r.status_code == 200
        assert [u["id"] for u in r.json()] == [t.users["annotator"]]
        assert set(r.json()[0]) >= {"id", "username", "email", "first_name", "last_name", "avatar"}
        assert t["outsider"].get(f"/api/projects/{pid}/annotators/").status_code == 403


def test_named_tokens(api, live_server):
    uid, token = new_user(api, "frank")
    with live_server.client(token=token) as frank:
        r = frank.post("/api/current-user/tokens/", json={"name": "ci"})
        assert r.status_code == 201
        created = r.json()
        assert created["name"] == "ci" and created["token"].startswith(created["prefix"])
        listed = frank.get("/api/current-user/tokens/").json()
        assert [t["name"] for t in listed] == ["default", "ci"]
        assert all("token" not in t for t in listed)
        with live_server.client(token=created["token"]) as ci:
            assert ci.get("/api/current-user/whoami").json()["username"] == "frank"
            assert frank.delete(f"/api/current-user/tokens/{created['id']}/").status_code == 204
            assert ci.get("/api/current-user/whoami").status_code == 401
        assert frank.get("/api/users/1/tokens/").status_code == 403  # someone else's
    assert [t["name"] for t in api.get(f"/api/users/{uid}/tokens/").json()] == ["default"]
    first = api.get(f"/api/users/{uid}/tokens/").json()[0]["id"]
    assert api.delete(f"/api/users/{uid}/tokens/{first}/").status_code == 204
    with live_server.client(token=token) as frank:
        assert frank.get("/api/current-user/whoami").status_code == 401


@pytest.fixture
def cli(live_server, monkeypatch, capsys):
    """Run `kubelabel ...` in-process against the live server's database; returns (rc, stdout)."""
    monkeypatch.setenv("DATABASE_URL", live_server.database_url)
    monkeypatch.setenv("KUBELABEL_DATA_DIR", str(live_server.data_dir))
    get_settings.cache_clear()

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        rc = cli_main(list(argv))
        return rc, capsys.readouterr().out

    yield run
    get_settings.cache_clear()


def test_cli_users_tokens_and_members(api, live_server, text_project, cli):
    pid = text_project["id"]
    rc, out = cli("user", "create", "gina", "--role", "annotator")
    assert rc == 0
    token = out.strip()
    with live_server.client(token=token) as gina:
        assert gina.get(f"/api/projects/{pid}/").status_code == 403  # not a member yet
        rc, out = cli("member", "add", str(pid), "gina", "viewer")
        assert rc == 0 and "viewer" in out
        assert gina.get(f"/api/projects/{pid}/").status_code == 200
        assert gina.patch(f"/api/projects/{pid}/", json={"title": "x"}).status_code == 403
        rc, _ = cli("member", "add", str(pid), "gina", "manager")  # add again = change the role
        assert rc == 0
        assert gina.patch(f"/api/projects/{pid}/", json={"title": "x"}).status_code == 200
        rc, out = cli("member", "list", str(pid))
        assert "gina\tmanager" in out
        rc, out = cli("member", "remove", str(pid), "gina")
        assert rc == 0 and gina.get(f"/api/projects/{pid}/").status_code == 403

        rc, out = cli("user", "token", "gina", "--name", "second")
        second = out.strip()
        rc, out = cli("user", "tokens", "gina")
        assert "cli" in out and "second" in out and second not in out  # only prefixes are shown
        token_id = out.splitlines()[0].split("\t")[0]
        assert cli("user", "revoke", "gina", token_id)[0] == 0
        assert gina.get("/api/current-user/whoami").status_code == 401
    rc, out = cli("member", "add", str(pid), "nobody", "viewer")
    assert rc == 2 and "no user named 'nobody'" in out
    rc, out = cli("member", "add", "999", "gina", "viewer")
    assert rc == 2 and "project 999 does not exist" in out
    assert cli("user", "deactivate", "gina")[0] == 0
    with live_server.client(token=second) as gina:
        assert gina.get("/api/current-user/whoami").status_code == 401
