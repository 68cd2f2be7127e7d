"""`Idempotency-Key` on imports: a retry answers the first response and writes nothing twice."""

from __future__ import annotations

import threading
from datetime import timedelta

import orjson
from sqlalchemy import update

from api_server.db.base import utcnow
from api_server.db.models import IdempotencyKey
from tests.support.labeling import member

RESULT = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Neutral"]}}]


def _count(api, pid: int) -> int:
    return int(api.get(f"/api/projects/{pid}/").json()["task_number"])


def _post(api, pid, key, body, content_type="application/json", **params):
    headers = {"Content-Type": content_type, "Idempotency-Key": key}
    return api.post(f"/api/projects/{pid}/import", content=body, headers=headers, params=params)


def test_a_retried_import_imports_once_and_answers_the_first_body(api, text_project):
    pid = text_project["id"]
    body = orjson.dumps([{"text": "a"}, {"text": "b"}])
    first = _post(api, pid, "k-1", body, return_task_ids="true")
    assert first.status_code == 201, first.text
    again = _post(api, pid, "k-1", body, return_task_ids="true")
    assert again.status_code == 201, again.text
    assert again.content == first.content  # the same body, byte for byte (duration and task ids too)
    assert _count(api, pid) == 2

    # Another key is another import; no key at all is never deduplicated.
    assert _post(api, pid, "k-2", body).status_code == 201
    plain = api.post(f"/api/projects/{pid}/import", content=body, headers={"Content-Type": "application/json"})
    assert plain.status_code == 201
    assert _count(api, pid) == 6


def test_a_key_reused_with_another_request_is_refused(api, text_project):
    pid = text_project["id"]
    assert _post(api, pid, "k", orjson.dumps([{"text": "a"}])).status_code == 201
    r = _post(api, pid, "k", orjson.dumps([{"text": "other"}]))
    assert r.status_code == 409 and "Idempotency-Key" in r.json()["detail"], r.text
    # Another query is another request too.
    r = _post(api, pid, "k", orjson.dumps([{"text": "a"}]), return_task_ids="true")
    assert r.status_code == 409, r.text
    assert _count(api, pid) == 1


def test_streamed_jsonl_and_forms_are_deduplicated(api, text_project):
    pid = text_project["id"]
    jsonl = b'{"text": "j1"}\n{"text": "j2"}\n'
    assert _post(api, pid, "jl", jsonl, "application/x-ndjson").status_code == 201
    assert _post(api, pid, "jl", jsonl, "application/x-ndjson").status_code == 201
    assert _post(api, pid, "jl", b'{"text": "j3"}\n', "application/x-ndjson").status_code == 409
    assert _count(api, pid) == 2

    # A client that retries a form picks a new multipart boundary: still the same request.
    files = [("file", ("a.csv", b"text\nc1\nc2\n", "text/csv"))]
    headers = {"Idempotency-Key": "form"}
    first = api.post(f"/api/projects/{pid}/import", files=files, headers=headers)
    again = api.post(f"/api/projects/{pid}/import", files=files, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    other = [("file", ("a.csv", b"text\nc3\n", "text/csv"))]
    assert api.post(f"/api/projects/{pid}/import", files=other, headers=headers).status_code == 409
    assert _count(api, pid) == 4


def test_keys_belong_to_a_user_and_a_project_and_expire(api, live_server, text_project):
    pid = text_project["id"]
    other = api.post("/api/projects/", json={"title": "other", "label_config": text_project["label_config"]})
    other_pid = other.json()["id"]
    body = orjson.dumps([{"text": "a"}])
    assert _post(api, pid, "shared", body).status_code == 201
    assert _post(api, other_pid, "shared", body).status_code == 201
    with member(api, live_server, pid, "manager", "mgr") as manager:
        assert _post(manager, pid, "shared", body).status_code == 201
    assert _count(api, pid) == 2 and _count(api, other_pid) == 1

    with live_server.session_factory() as session:
        session.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=24, seconds=1)))
        session.commit()
    assert _post(api, pid, "shared", orjson.dumps([{"text": "new"}])).status_code == 201
    assert _count(api, pid) == 3


def test_a_malformed_key_is_400(api, text_project):
    r = _post(api, text_project["id"], "x" * 256, b"[]")
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["detail"]


def test_concurrent_requests_with_one_key_import_once(api, live_server, text_project):
    pid = text_project["id"]
    body = orjson.dumps([{"text": f"t{i}"} for i in range(3000)])
    answers: list = []

    def send() -> None:
        with live_server.client() as client:
            answers.append(_post(client, pid, "race", body, return_task_ids="true"))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _count(api, pid) == 3000
    ok = [a for a in answers if a.status_code == 201]
    assert ok and all(a.content == ok[0].content for a in ok)
    assert all(a.status_code in (201, 409) for a in answers), [a.text for a in answers]


def test_predictions_import_with_a_key(api, text_project):
    pid = text_project["id"]
    ids = api.post(f"/api/projects/{pid}/import", json=[{"text": "a"}], params={"return_task_ids": 1})
    [task] = ids.json()["task_ids"]
    body = orjson.dumps([{"task": task, "result": RESULT, "score": 0.5}])
    path = f"/api/projects/{pid}/import/predictions"
    headers = {"Content-Type": "application/json", "Idempotency-Key": "p"}
    assert api.post(path, content=body, headers=headers).json() == {"created": 1}
    r = api.post(path, content=body, headers=headers)
    assert r.status_code == 201 and r.json() == {"created": 1}
    assert api.get(f"/api/tasks/{task}/").json()["total_predictions"] == 1
    other = orjson.dumps([{"task": task, "result": RESULT, "score": 0.9}])
    assert api.post(path, content=other, headers=headers).status_code == 409
    # A failed import records no key: the corrected request goes through under it.
    bad = orjson.dumps([{"task": 99999, "result": RESULT}])
    assert api.post(path, content=bad, headers={**headers, "Idempotency-Key": "q"}).status_code == 400
    assert api.post(path, content=body, headers={**headers, "Idempotency-Key": "q"}).status_code == 201
    assert api.get(f"/api/tasks/{task}/").json()["total_predictions"] == 2
