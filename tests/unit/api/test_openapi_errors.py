"""The OpenAPI document tells the truth about errors: every operation documents the 4xx statuses it
answers with the project's error body, and none promises FastAPI's 422 (the server answers 400)."""

from __future__ import annotations

import pytest

from api_server.app import create_app
from api_server.settings import Settings


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    app = create_app(Settings(KUBELABEL_DATA_DIR=str(tmp_path_factory.mktemp("openapi"))))
    return app.openapi()


PUBLIC = {"/api/webhooks/info/", "/api/auth/login", "/api/auth/logout"}
# Signing in and out touch no object whose state could conflict.
NO_CONFLICT = {"/api/auth/login", "/api/auth/logout"}


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_no_operation_promises_422(schema):
    assert [(p, m) for p, m, op in _operations(schema) if "422" in op["responses"]] == []
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_every_error_is_the_project_error_body(schema):
    error = schema["components"]["schemas"]["ErrorBody"]
    assert set(error["required"]) == {"status_code", "detail"}
    assert "validation_errors" in error["properties"]
    wrong = []
    for path, method, op in _operations(schema):
        for status, response in op["responses"].items():
            if status.startswith("4"):
                ref = response["content"]["application/json"]["schema"].get("$ref", "")
                if not ref.endswith("/ErrorBody"):
                    wrong.append((path, method, status, ref))
    assert wrong == []


def test_each_api_operation_documents_what_it_answers(schema):
    missing = []
    for path, method, op in _operations(schema):
        if not path.startswith("/api/") or path == "/api/version":  # version: no input, no token
            continue
        codes = set(op["responses"])
        # Everything under /api needs a token but the catalogue of webhook events and signing in and out.
        wanted = {"400"} if path in PUBLIC else {"400", "401", "403"}
        if "{" in path or "requestBody" in op:
            wanted.add("404")
        if method in ("post", "put", "patch", "delete") and path not in NO_CONFLICT:
            wanted.add("409")
        if "requestBody" in op:
            wanted.add("413")
        if path.endswith("/import") or path.endswith("/import/predictions"):
            wanted |= {"413", "415"}
        if not wanted <= codes:
            missing.append((method, path, sorted(wanted - codes)))
    assert missing == []


def test_integer_parameters_carry_the_input_limits(schema):
    unbounded, bounds = [], {}
    for path, method, op in _operations(schema):
        for parameter in op.get("parameters", []):
            spec = parameter["schema"]
            for branch in [spec, *spec.get("anyOf", [])]:
                if branch.get("type") == "integer":
                    if "maximum" not in branch or "minimum" not in branch:
                        unbounded.append((method, path, parameter["name"]))
                    bounds[parameter["name"]] = branch.get("maximum")
    assert unbounded == []
    assert bounds["project_id"] == bounds["user_id"] == 2**31 - 1
    assert bounds["task_id"] == bounds["annotation_id"] == 2**63 - 1
    completed_by = schema["components"]["schemas"]["AnnotationCreate"]["properties"]["completed_by"]
    assert completed_by["anyOf"][0]["maximum"] == 2**31 - 1
