"""schemathesis over the whole OpenAPI document, against the live server on SQLite and PostgreSQL.

A seeded project, tasks, annotation, prediction, draft, user and token make the generated paths
resolve (path ids are drawn from the seeded ones most of the time, random otherwise). The bar:
no 5xx and no response outside the document (status code, content type, body schema).

Operations whose input is an outbound address (creating or changing ML backends, storages and
webhooks, and the ML and storage actions that call out) are left out: the tests speak to
127.0.0.1 only. Reading and deleting them is fuzzed. `make fuzz` runs the same with more examples
(KUBELABEL_FUZZ_EXAMPLES) and every check schemathesis has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEXT_CONFIG
from tests.support.apiserver import ADMIN_TOKEN

ST = Path(sys.executable).parent / "st"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
# 10 examples per operation: about 4,900 requests and 70 s per database on a 2-core machine.
EXAMPLES = int(os.environ.get("KUBELABEL_FUZZ_EXAMPLES", "10"))
ALL_CHECKS = os.environ.get("KUBELABEL_FUZZ_ALL_CHECKS") == "1"
# Outbound addresses in their input (see the module docstring).
EXCLUDED_NAMES = r"^(POST|PUT|PATCH) /api/(ml|storages)/"
EXCLUDED_OPERATIONS = ("create_webhook_api_webhooks_post", "update_webhook_api_webhooks__webhook_id__patch")
# ... and the admin's own token must keep working.
EXCLUDED_PATHS_EXACT = ("/api/current-user/reset-token/",)
CHOICE = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]


def _seed(api) -> dict[str, list[int]]:
    def ok(r, status=201):
        assert r.status_code == status, r.text
        return r.json()

    projects = [
        ok(api.post("/api/projects/", json={"title": f"fuzz {i}", "label_config": TEXT_CONFIG}))["id"] for i in range(3)
    ]
    tasks = ok(
        api.post(
            f"/api/projects/{projects[0]}/import",
            params={"return_task_ids": True},
            json=[{"data": {"text": f"t{i}"}, "predictions": [{"result": CHOICE, "score": 0.5}]} for i in range(5)],
        )
    )["task_ids"]
    annotations = [ok(api.post(f"/api/tasks/{t}/annotations/", json={"result": CHOICE}))["id"] for t in tasks[:3]]
    predictions = [p["id"] for p in ok(api.get("/api/predictions/", params={"project": projects[0]}), 200)]
    drafts = [ok(api.post(f"/api/tasks/{tasks[3]}/drafts/", json={"result": CHOICE}))["id"]]
    user = ok(api.post("/api/users/", json={"username": "fuzzed"}))["id"]
    ok(api.post(f"/api/projects/{projects[0]}/members/", json={"user": user, "role": "annotator"}))
    tokens = [ok(api.post("/api/current-user/tokens/", json={"name": "fuzz"}))["id"]]
    return {
        "project_id": projects,
        "task_id": tasks,
        "annotation_id": annotations,
        "prediction_id": predictions,
        "draft_id": drafts,
        "user_id": [user],
        "token_id": tokens,
    }


def _config(ids: dict[str, list[int]]) -> str:
    lines = []
    for name, values in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    for name in ids:
        # The admin running the fuzz must keep its account and token: users and tokens are always seeded ones.
        probability = 1.0 if name in ("user_id", "token_id") else 0.8
        lines.append(f'"path.{name}" = {{ dictionary = "{name}", probability = {probability} }}')
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(900)
def test_no_server_errors_and_no_schema_violations(api, live_server, tmp_path):
    ids = _seed(api)
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(ids))
    events = tmp_path / "events.ndjson"
    command = [
        str(ST),
        "--config-file",
        str(config),
        "run",
        f"{live_server.url}/api/schema",
        "--header",
        f"Authorization: Token {ADMIN_TOKEN}",
        "--checks",
        "all" if ALL_CHECKS else CHECKS,
        "--max-examples",
        str(EXAMPLES),
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "17",
        # One worker: schemathesis's workers are threads, and CPython 3.11's ast.parse (which Hypothesis
        # calls to describe its lambdas) is not thread-safe: "AST constructor recursion depth mismatch".
        "--workers",
        "1",
        "--no-shrink",
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "60",
        "--exclude-name-regex",
        EXCLUDED_NAMES,
        "--no-color",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(events),
    ]
    for operation in EXCLUDED_OPERATIONS:
        command += ["--exclude-operation-id", operation]
    for path in EXCLUDED_PATHS_EXACT:
        command += ["--exclude-path", path]
    done = subprocess.run(command, capture_output=True, text=True, timeout=None if ALL_CHECKS else 850, cwd=tmp_path)
    summary = done.stdout if ALL_CHECKS else done.stdout[-6000:]
    print(summary)  # noqa: T201 - the operations and requests covered (and make fuzz's findings, whole)
    assert done.returncode == 0, summary
    assert "5xx" not in summary and "Server error" not in summary
