"""Routing's own errors come in the project's error body, and a 405 lists every method the path serves."""

from __future__ import annotations


def test_method_not_allowed_lists_every_method_of_the_path(api):
    r = api.request("PUT", "/api/annotations/1/")
    assert r.status_code == 405
    assert r.json() == {"status_code": 405, "detail": "Method Not Allowed"}
    assert r.headers["allow"] == "DELETE, GET, PATCH"
    r = api.request("PUT", "/api/projects/")
    assert (r.status_code, r.headers["allow"]) == (405, "GET, POST")


def test_unknown_path_is_the_error_body(api):
    r = api.get("/api/no-such-thing/")
    assert r.status_code == 404
    assert r.json() == {"status_code": 404, "detail": "Not Found"}
