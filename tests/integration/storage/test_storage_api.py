"""The Label Studio-compatible storage endpoints against a real server and real emulators."""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api_server.db.models import ExportLink, ExportStorage, StorageLink, Task
from api_server.storages import repository as storage_repository
from api_server.storages.presign import encode_fileuri
from tests.support.labeling import import_tasks

IMAGE_CONFIG = """<View>
  <Image name="img" value="$image"/>
  <Choices name="kind" toName="img"><Choice value="cat"/><Choice value="dog"/></Choices>
</View>"""
TEXT_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/></Choices>
</View>"""
FINAL = {"completed", "completed_with_errors", "failed"}


def make_project(api: httpx.Client, config: str) -> int:
    r = api.post("/api/projects/", json={"title": "storage", "label_config": config})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def storage_fields(env: Any, bucket: str) -> dict[str, Any]:
    """Label Studio create fields (with credentials) for the emulator `env`."""
    if env.kind == "s3":
        return {
            "bucket": bucket,
            "s3_endpoint": env.endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": env.credentials.aws_access_key_id,
            "aws_secret_access_key": env.credentials.aws_secret_access_key,
        }
    if env.kind == "gcs":
        return {"bucket": bucket, "endpoint": env.endpoint, "google_project_id": "kubelabel-test"}
    return {"container": bucket, "connection_string": env.credentials.azure_storage_connection_string}


def base(env: Any, export: bool = False) -> str:
    return f"/api/storages/export/{env.kind}" if export else f"/api/storages/{env.kind}"


def sync_and_wait(api: httpx.Client, path: str, timeout: float = 60) -> dict[str, Any]:
    r = api.post(f"{path}/sync")
    assert r.status_code == 200, r.text
    assert r.json()["status"] in {"queued", "in_progress", *FINAL}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = api.get(path).json()
        if body["status"] in FINAL:
            return body
        time.sleep(0.1)
    raise AssertionError(f"sync did not finish: {body}")


def tasks_of(live_server: Any, project_id: int) -> list[Task]:
    with live_server.session_factory() as session:
        return list(session.scalars(select(Task).where(Task.project_id == project_id).order_by(Task.id)))


def test_crud_never_returns_credentials(api, moto_s3):
    project = make_project(api, IMAGE_CONFIG)
    bucket = moto_s3.new_bucket()
    r = api.post("/api/storages/s3/", json={"project": project, "title": "raw", **storage_fields(moto_s3, bucket)})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["status"] == "initialized" and created["bucket"] == bucket and created["type"] == "s3"
    for body in (
        created,
        api.get(f"/api/storages/s3/{created['id']}").json(),
        api.get(f"/api/storages/s3/?project={project}").json()[0],
    ):
        text = json.dumps(body)
        assert "aws_secret_access_key" not in body and "testing" not in text.replace(bucket, "")
        assert body["credentials_set"] == ["aws_access_key_id", "aws_secret_access_key"]  # names only

    r = api.patch(f"/api/storages/s3/{created['id']}", json={"prefix": "images/", "regex_filter": r".*\.jpg$"})
    assert r.status_code == 200 and r.json()["prefix"] == "images/" and r.json()["regex_filter"] == r".*\.jpg$"
    assert [s["id"] for s in api.get("/api/storages/", params={"project": project}).json()] == [created["id"]]
    assert api.get("/api/storages/types").json()[0] == {"name": "s3", "title": "AWS S3"}

    assert api.delete(f"/api/storages/s3/{created['id']}").status_code == 204
    assert api.get(f"/api/storages/s3/{created['id']}").status_code == 404
    assert api.get(f"/api/storages/gcs/{created['id']}").status_code == 404


def test_create_rejects_bad_settings(api, moto_s3):
    project = make_project(api, IMAGE_CONFIG)
    r = api.post("/api/storages/s3/", json={"project": project, "bucket": "b", "regex_filter": "(["})
    assert r.status_code == 400 and "invalid regex filter" in r.json()["detail"]
    r = api.post("/api/storages/s3/", json={"project": project})
    assert r.status_code == 400 and "bucket" in r.json()["detail"]


def test_validate_reports_missing_bucket_and_bad_credentials(api, moto_s3, s3rver):
    project = make_project(api, IMAGE_CONFIG)
    ok = api.post(
        "/api/storages/s3/validate", json={"project": project, **storage_fields(moto_s3, moto_s3.new_bucket())}
    )
    assert ok.status_code == 200, ok.text
    missing = api.post("/api/storages/s3/validate", json={"project": project, **storage_fields(moto_s3, "kl-missing")})
    assert missing.status_code == 400 and "does not exist" in missing.json()["detail"]
    bad = {**storage_fields(s3rver, s3rver.new_bucket()), "aws_access_key_id": "NOPE", "aws_secret_access_key": "x"}
    denied = api.post("/api/storages/s3/validate", json={"project": project, **bad})
    assert denied.status_code == 400 and "access denied" in denied.json()["detail"]
    assert denied.json()["detail"] != "x"


def test_sync_with_missing_bucket_fails_cleanly(api, live_server, storage_env):
    project = make_project(api, IMAGE_CONFIG)
    fields = storage_fields(storage_env, "kl-missing-bucket")
    r = api.post(f"{base(storage_env)}/", json={"project": project, "use_blob_urls": True, **fields})
    body = sync_and_wait(api, f"{base(storage_env)}/{r.json()['id']}")
    assert body["status"] == "failed"
    assert "does not exist" in body["traceback"]
    assert tasks_of(live_server, project) == []


def test_blob_import_resync_and_changed_objects(api, live_server, storage_env):
    project = make_project(api, IMAGE_CONFIG)
    bucket = storage_env.new_bucket()
    provider = storage_env.provider(bucket)
    for i in range(7):
        provider.write(f"images/{i:02d}.jpg", b"jpeg %d" % i, "image/jpeg")
    provider.write("images/notes.txt", b"not an image", "text/plain")
    provider.write("other/99.jpg", b"outside the prefix", "image/jpeg")
    r = api.post(
        f"{base(storage_env)}/",
        json={
            "project": project,
            "prefix": "images/",
            "glob_filter": "*.jpg",
            "use_blob_urls": True,
            "presign": False,
            **storage_fields(storage_env, bucket),
        },
    )
    path = f"{base(storage_env)}/{r.json()['id']}"

    first = sync_and_wait(api, path)
    assert first["status"] == "completed", first
    assert first["last_sync_count"] == 7 and first["last_sync"]
    assert first["meta"]["listed"] == 8 and first["meta"]["matched"] == 7
    scheme = {"s3": "s3", "gcs": "gs", "azure": "azure-blob"}[storage_env.kind]
    tasks = tasks_of(live_server, project)
    assert sorted(t.data["image"] for t in tasks) == [f"{scheme}://{bucket}/images/{i:02d}.jpg" for i in range(7)]

    provider.write("images/07.jpg", b"new", "image/jpeg")
    provider.write("images/03.jpg", b"changed", "image/jpeg")
    second = sync_and_wait(api, path)
    assert second["status"] == "completed" and second["last_sync_count"] == 1
    assert second["meta"]["unchanged"] == 7
    assert len(tasks_of(live_server, project)) == 8

    # Asked to, a re-sync records the changed object's new etag; still no duplicate.
    api.patch(path, json={"update_changed": True})
    provider.write("images/03.jpg", b"changed again", "image/jpeg")
    third = sync_and_wait(api, path)
    assert third["meta"]["updated"] == 1 and third["meta"]["created"] == 0
    with live_server.session_factory() as session:
        links = session.execute(select(StorageLink.key, func.count()).group_by(StorageLink.key)).all()
    assert len(links) == 8 and all(count == 1 for _, count in links)


def test_task_file_import_json_and_jsonl(api, live_server, storage_env):
    project = make_project(api, TEXT_CONFIG)
    bucket = storage_env.new_bucket()
    provider = storage_env.provider(bucket)
    provider.write("tasks/a.json", json.dumps([{"text": "one"}, {"data": {"text": "two"}, "meta": {"m": 1}}]).encode())
    provider.write("tasks/b.jsonl", b'{"text": "three"}\n\n{"data": {"text": "four"}}\n')
    provider.write("tasks/c.json", json.dumps({"data": {"text": "five"}, "annotations": [{"result": []}]}).encode())
    provider.write("tasks/broken.json", b"{not json")
    provider.write("tasks/d.json", json.dumps([{"wrong_field": 1}]).encode())
    r = api.post(
        f"{base(storage_env)}/",
        json={"project": project, "prefix": "tasks/", "use_blob_urls": False, **storage_fields(storage_env, bucket)},
    )
    path = f"{base(storage_env)}/{r.json()['id']}"
    first = sync_and_wait(api, path)
    assert first["status"] == "completed_with_errors", first
    assert "broken.json" in first["traceback"] and first["meta"]["errors"] == 2
    assert "tasks/d.json row 0: task data lacks $text" in first["traceback"]
    tasks = tasks_of(live_server, project)
    assert sorted(t.data["text"] for t in tasks) == ["five", "four", "one", "three", "two"]
    assert next(t for t in tasks if t.data["text"] == "two").meta == {"m": 1}
    assert next(t for t in tasks if t.data["text"] == "five").total_annotations == 1

    again = sync_and_wait(api, path)
    assert again["last_sync_count"] == 0 and again["meta"]["unchanged"] == 3
    assert len(tasks_of(live_server, project)) == 5

    # A changed task file updates its tasks in place (when asked) and adds its new rows.
    api.patch(path, json={"update_changed": True})
    provider.write("tasks/b.jsonl", b'{"text": "three v2"}\n{"text": "four"}\n{"text": "six"}\n')
    changed = sync_and_wait(api, path)
    assert changed["meta"]["created"] == 1 and changed["meta"]["updated"] == 2
    assert sorted(t.data["text"] for t in tasks_of(live_server, project)) == [
        "five",
        "four",
        "one",
        "six",
        "three v2",
        "two",
    ]


def _annotate(api: httpx.Client, task_id: int, choice: str) -> int:
    result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [choice]}}]
    r = api.post(f"/api/tasks/{task_id}/annotations/", json={"result": result})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_export_sync_on_save_and_delete(api, live_server, storage_env):
    project = make_project(api, TEXT_CONFIG)
    r = api.post(f"/api/projects/{project}/import?return_task_ids=true", json=[{"text": f"t{i}"} for i in range(3)])
    assert r.status_code == 201, r.text
    task_ids = r.json()["task_ids"]
    first = _annotate(api, task_ids[0], "Positive")
    _annotate(api, task_ids[1], "Negative")

    bucket = storage_env.new_bucket()
    provider = storage_env.provider(bucket)
    r = api.post(
        f"{base(storage_env, export=True)}",
        json={"project": project, "prefix": "out", "can_delete_objects": True, **storage_fields(storage_env, bucket)},
    )
    assert r.status_code == 201, r.text
    path = f"{base(storage_env, export=True)}/{r.json()['id']}"
    done = sync_and_wait(api, path)
    assert done["status"] == "completed" and done["last_sync_count"] == 2
    keys = sorted(o.key for o in provider.iter_objects())
    assert keys == sorted(f"out/{tid}.json" for tid in task_ids[:2])
    exported = json.loads(provider.read(f"out/{task_ids[0]}.json"))
    assert exported["id"] == task_ids[0] and exported["data"] == {"text": "t0"}
    assert exported["annotations"][0]["result"][0]["value"] == {"choices": ["Positive"]}

    # Saving an annotation writes its task right away; deleting the last one deletes the object.
    _annotate(api, task_ids[2], "Positive")
    _wait_for(lambda: f"out/{task_ids[2]}.json" in {o.key for o in provider.iter_objects()})
    assert api.delete(f"/api/annotations/{first}/").status_code == 204
    _wait_for(lambda: f"out/{task_ids[0]}.json" not in {o.key for o in provider.iter_objects()})


def test_presign_redirects_or_proxies(api, live_server, moto_s3):
    project = make_project(api, IMAGE_CONFIG)
    bucket = moto_s3.new_bucket()
    moto_s3.provider(bucket).write("pics/cat.png", b"\x89PNG cat", "image/png")
    r = api.post(
        "/api/storages/s3/",
        json={"project": project, "use_blob_urls": True, "presign_ttl": 5, **storage_fields(moto_s3, bucket)},
    )
    storage_id = r.json()["id"]
    sync_and_wait(api, f"/api/storages/s3/{storage_id}")
    [task] = tasks_of(live_server, project)
    uri = task.data["image"]
    assert uri == f"s3://{bucket}/pics/cat.png"

    r = api.get(f"/tasks/{task.id}/presign/", params={"fileuri": encode_fileuri(uri)})
    assert r.status_code == 303
    target = r.headers["location"]
    assert "X-Amz-Expires=300" in target and "X-Amz-Signature=" in target
    assert httpx.get(target).content == b"\x89PNG cat"

    api.patch(f"/api/storages/s3/{storage_id}", json={"presign": False})
    r = api.get(f"/api/projects/{project}/presign/", params={"fileuri": uri})
    assert r.status_code == 200 and r.content == b"\x89PNG cat"
    assert r.headers["content-type"] == "image/png"

    assert api.get(f"/tasks/{task.id}/presign/", params={"fileuri": "s3://other-bucket/x.png"}).status_code == 404
    assert httpx.get(f"{live_server.url}/tasks/{task.id}/presign/", params={"fileuri": uri}).status_code == 401


def test_export_links_survive_two_jobs_writing_the_same_task(api, live_server):
    """Two export jobs may write or delete one task's object at once; neither fails nor warns."""
    project = api.post("/api/projects/", json={"title": "links"}).json()
    [task] = import_tasks(api, project["id"], [{"text": "a"}])
    with live_server.session_factory() as session:
        storage = ExportStorage(project_id=project["id"], type="s3", title="out", settings={})
        session.add(storage)
        session.commit()
        storage_id = storage.id

    def race(first: Callable[[Session], None], second: Callable[[Session], None]) -> None:
        """`second` runs in another thread while `first`'s transaction is open, and ends after it commits."""
        errors: list[BaseException] = []

        def run_second(session: Session) -> None:
            try:
                second(session)
                session.commit()
            except BaseException as exc:  # noqa: BLE001 (reported by the test thread)
                errors.append(exc)

        with live_server.session_factory() as a, live_server.session_factory() as b:
            first(a)
            other = threading.Thread(target=run_second, args=(b,))
            other.start()
            time.sleep(0.3)  # the second job reaches its write
            a.commit()
            other.join(30)
        assert errors == []

    def links() -> list[str]:
        with live_server.session_factory() as session:
            return list(session.scalars(select(ExportLink.key).where(ExportLink.storage_id == storage_id)))

    def write(key: str) -> Callable[[Session], None]:
        return lambda session: storage_repository.upsert_export_link(session, storage_id, task, key)

    def remove(session: Session) -> None:
        storage_repository.delete_export_link(session, storage_id, task)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a delete that found its row gone warned
        race(write("first.json"), write("second.json"))
        assert links() == ["second.json"]
        race(remove, remove)
    assert links() == []
