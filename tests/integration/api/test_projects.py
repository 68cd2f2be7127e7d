"""Projects over HTTP: CRUD, label config validation, auth, clear errors."""

from __future__ import annotations

from tests.conftest import TEXT_CONFIG


def test_create_get_update_delete(api):
    r = api.post("/api/projects/", json={"title": "P", "label_config": TEXT_CONFIG, "maximum_annotations": 2})
    assert r.status_code == 201, r.text
    project = r.json()
    assert project["maximum_annotations"] == 2
    assert project["parsed_label_config"]["sentiment"]["labels"] == ["Positive", "Negative", "Neutral"]
    assert project["task_number"] == 0

    r = api.get(f"/api/projects/{project['id']}/")
    assert r.status_code == 200 and r.json()["title"] == "P"

    r = api.patch(f"/api/projects/{project['id']}", json={"title": "Q", "sampling": "Uniform sampling"})
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "Q" and r.json()["sampling"] == "Uniform sampling"

    listed = api.get("/api/projects/").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == project["id"]

    assert api.delete(f"/api/projects/{project['id']}/").status_code == 204
    assert api.get(f"/api/projects/{project['id']}/").status_code == 404


def test_requires_token(live_server):
    with live_server.client(token=None) as anonymous:
        r = anonymous.get("/api/projects/")
    assert r.status_code == 401
    assert "Authorization: Token" in r.json()["detail"]
    with live_server.client(token="wrong") as wrong:
        assert wrong.get("/api/projects/").status_code == 401


def test_invalid_configs_are_named(api):
    choices = "<Choices name='{name}' toName='{target}'><Choice value='a'/></Choices>"
    cases = {
        "<View><Text name='t' value='$t'/><Foo/></View>": "unknown tag <Foo>",
        "<View><Text name='t' value='$t'/>" + choices.format(name="c", target="x") + "</View>": 'toName="x"',
        "<View><Text name='t' value='$t'/>" + choices.format(name="t", target="t") + "</View>": "duplicate name 't'",
        "<View><Text name='t' value='$t'/><Labels name='l' toName='t'></Labels></View>": "has no <Label> children",
        "<View><Text name='t' value='$t'>": "not well-formed",
    }
    for config, expected in cases.items():
        r = api.post("/api/projects/", json={"title": "bad", "label_config": config})
        assert r.status_code == 400, config
        assert expected in r.json()["detail"], (config, r.json())
    assert api.get("/api/projects/").json()["count"] == 0


def test_unknown_field_and_wrong_type_are_named(api):
    r = api.post("/api/projects/", json={"title": "x", "colour": "red"})
    assert r.status_code == 400
    assert r.json()["validation_errors"] == {"colour": ["unknown field"]}
    r = api.post("/api/projects/", json={"title": "x", "maximum_annotations": "many"})
    assert r.status_code == 400
    assert "maximum_annotations" in r.json()["validation_errors"]


def test_validate_endpoint_lists_variables(api):
    r = api.post("/api/projects/validate/", json={"label_config": TEXT_CONFIG})
    assert r.status_code == 200
    assert r.json()["data_variables"] == ["text"]


def test_health_ready_metrics_schema(api):
    assert api.get("/health").json() == {"status": "UP"}
    assert api.get("/ready").json() == {"status": "UP"}
    # Label Studio's shape: its SDK reads `release`, its UI the package version.
    version = api.get("/api/version")
    assert version.status_code == 200
    assert version.json()["release"] == version.json()["label-studio-os-package"]["version"] != ""
    api.post("/api/projects/", json={"title": "m", "label_config": TEXT_CONFIG})
    metrics = api.get("/metrics").text
    assert 'kubelabel_http_request_duration_seconds_count{method="POST",route="/api/projects/",status="201"}' in metrics
    schema = api.get("/api/schema").json()
    assert "/api/projects/" in schema["paths"]
    assert api.get("/docs").status_code == 200


def test_collection_paths_answer_with_and_without_slash(api):
    assert api.get("/api/projects").status_code == 200
    assert api.get("/api/projects/").status_code == 200
    created = api.post("/api/projects", json={"title": "no slash", "label_config": TEXT_CONFIG})
    assert created.status_code == 201, created.text
