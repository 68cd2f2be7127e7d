"""`kubelabel sync` as the operator's Job runs it: a subprocess configured by env, against a real server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from api_server.db.models import ImportStorage, StorageLink, Task
from tests.support.apiserver import ADMIN_TOKEN, TEST_EGRESS_ALLOW

IMAGE_CONFIG = (
    '<View><Image name="img" value="$image"/><Choices name="c" toName="img"><Choice value="a"/></Choices></View>'
)
TEXT_CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="c" toName="text"><Choice value="a"/></Choices></View>'
)


# Every provider on SQLite, S3 also on PostgreSQL: the job's logic does not depend on the database,
# and these subprocess tests are the slow ones.
PROVIDER_MATRIX = pytest.mark.parametrize(
    "live_server, storage_env",
    [("sqlite", "s3"), ("postgres", "s3"), ("sqlite", "gcs"), ("sqlite", "azure")],
    indirect=True,
)


def make_project(api, config: str) -> int:
    r = api.post("/api/projects/", json={"title": "sync job", "label_config": config})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def write_credentials(env: Any, directory: Path) -> Path:
    """The credentials Secret as the Job mounts it: one file per key."""
    directory.mkdir(parents=True, exist_ok=True)
    c = env.credentials
    values = {
        "AWS_ACCESS_KEY_ID": c.aws_access_key_id,
        "AWS_SECRET_ACCESS_KEY": c.aws_secret_access_key,
        "AZURE_STORAGE_CONNECTION_STRING": c.azure_storage_connection_string,
    }
    for key, value in values.items():
        if value:
            (directory / key).write_text(value + "\n")
    return directory


def job_env(live_server, spec: dict[str, Any], creds: Path, tmp_path: Path, name: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_", "KUBELABEL_"))}
    env.update(
        KUBELABEL_API_URL=live_server.url,
        KUBELABEL_API_TOKEN=ADMIN_TOKEN,
        KUBELABEL_PROJECT_ID=str(spec.pop("_project")),
        KUBELABEL_STORAGE_NAME=name,
        KUBELABEL_STORAGE_SPEC=json.dumps(spec),
        KUBELABEL_STORAGE_CREDENTIALS_DIR=str(creds),
        KUBELABEL_RESULT_FILE=str(tmp_path / f"result-{name.replace('/', '-')}.json"),
        KUBELABEL_SYNC_PROGRESS_SECONDS="0.2",
        KUBELABEL_EGRESS_ALLOW=TEST_EGRESS_ALLOW,  # the emulators listen on 127.0.0.1
    )
    env.update(extra)
    return env


def spec_for(env: Any, project: int, bucket: str, **fields: Any) -> dict[str, Any]:
    spec = {"_project": project, "projectRef": {"name": "p"}, "provider": env.kind, "bucket": bucket, **fields}
    spec["endpoint"] = env.endpoint
    return spec


def sync_command() -> list[str]:
    return [sys.executable, "-m", "kubelabel_cli", "sync"]


def run_sync(env: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(sync_command(), env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, (done.stdout, done.stderr)
    return done.returncode, json.loads(lines[-1]), done.stderr


def count_tasks(live_server, project: int) -> int:
    with live_server.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(Task).where(Task.project_id == project)) or 0)


@PROVIDER_MATRIX
def test_job_imports_reports_and_resyncs(api, live_server, storage_env, tmp_path):
    project = make_project(api, IMAGE_CONFIG)
    bucket = storage_env.new_bucket()
    provider = storage_env.provider(bucket)
    for i in range(12):
        provider.write(f"img/{i}.png", b"png", "image/png")
    creds = write_credentials(storage_env, tmp_path / "creds")
    spec = spec_for(storage_env, project, bucket, prefix="img/", filter={"glob": "*.png"}, mode="objects")
    env = job_env(live_server, dict(spec), creds, tmp_path, "ns/photos")

    code, result, stderr = run_sync(env)
    assert code == 0, stderr
    assert result["status"] == "completed" and result["count"] == 12 and result["errors"] == 0
    assert json.loads(Path(env["KUBELABEL_RESULT_FILE"]).read_text()) == result
    assert "summary:" in stderr
    for secret in filter(
        None, [storage_env.credentials.aws_secret_access_key, storage_env.credentials.azure_storage_connection_string]
    ):
        assert secret not in stderr and secret not in json.dumps(result)
    assert count_tasks(live_server, project) == 12

    with live_server.session_factory() as session:
        storage = session.scalars(select(ImportStorage).where(ImportStorage.external_name == "ns/photos")).one()
        assert storage.status == "completed" and storage.last_sync_count == 12 and storage.settings["use_blob_urls"]

    provider.write("img/new.png", b"png", "image/png")
    code, result, _ = run_sync(env)
    assert code == 0 and result["count"] == 1
    assert count_tasks(live_server, project) == 13
    with live_server.session_factory() as session:  # same storage record, updated in place
        assert session.scalar(select(func.count()).select_from(ImportStorage)) == 1


def test_job_task_files(api, live_server, moto_s3, tmp_path):
    project = make_project(api, TEXT_CONFIG)
    bucket = moto_s3.new_bucket()
    provider = moto_s3.provider(bucket)
    provider.write("t/1.jsonl", b"".join(b'{"text": "row %d"}\n' % i for i in range(25)))
    provider.write("t/2.json", json.dumps([{"data": {"text": "x"}}, {"text": "y"}]).encode())
    spec = spec_for(moto_s3, project, bucket, prefix="t/", mode="tasks")
    env = job_env(
        live_server,
        spec,
        write_credentials(moto_s3, tmp_path / "c"),
        tmp_path,
        "ns/files",
        KUBELABEL_SYNC_BATCH_SIZE="10",
    )
    code, result, stderr = run_sync(env)
    assert code == 0 and result["count"] == 27, stderr
    code, result, _ = run_sync(env)
    assert result["count"] == 0 and count_tasks(live_server, project) == 27


@PROVIDER_MATRIX
def test_job_killed_midway_resumes_exactly_once(api, live_server, storage_env, tmp_path):
    total = 150
    project = make_project(api, IMAGE_CONFIG)
    bucket = storage_env.new_bucket()
    provider = storage_env.provider(bucket)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: provider.write(f"o/{i:05d}.jpg", b"j", "image/jpeg"), range(total)))
    spec = spec_for(storage_env, project, bucket)
    env = job_env(
        live_server,
        spec,
        write_credentials(storage_env, tmp_path / "c"),
        tmp_path,
        "ns/killed",
        KUBELABEL_SYNC_BATCH_SIZE="3",
    )

    proc = subprocess.Popen(sync_command(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while count_tasks(live_server, project) < 15 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    at_kill = count_tasks(live_server, project)
    assert 0 < at_kill < total, f"the sync was not killed midway ({at_kill} of {total})"

    code, result, stderr = run_sync(env | {"KUBELABEL_SYNC_BATCH_SIZE": "100"})
    assert code == 0, stderr
    assert result["status"] == "completed"
    # The rerun adds only what the killed run had not committed (in-flight batches may have landed).
    assert total - at_kill - 2 * 3 <= result["count"] <= total - at_kill  # up to two batches in flight
    with live_server.session_factory() as session:
        keys = session.execute(select(StorageLink.key, func.count()).group_by(StorageLink.key)).all()
    assert len(keys) == total and all(n == 1 for _, n in keys)
    assert count_tasks(live_server, project) == total


def test_job_wrong_credentials_fail_clearly_without_damage(api, live_server, s3rver, tmp_path):
    project = make_project(api, IMAGE_CONFIG)
    bucket = s3rver.new_bucket()
    s3rver.provider(bucket).write("a.jpg", b"j", "image/jpeg")
    creds = tmp_path / "bad"
    creds.mkdir()
    (creds / "AWS_ACCESS_KEY_ID").write_text("NOT-A-KEY")
    (creds / "AWS_SECRET_ACCESS_KEY").write_text("very-secret-value")
    env = job_env(live_server, spec_for(s3rver, project, bucket), creds, tmp_path, "ns/bad")
    code, result, stderr = run_sync(env)
    assert code == 1
    assert result["status"] == "failed" and "access denied" in result["message"]
    assert "very-secret-value" not in stderr + json.dumps(result)
    assert count_tasks(live_server, project) == 0
    with live_server.session_factory() as session:
        storage = session.scalars(select(ImportStorage).where(ImportStorage.external_name == "ns/bad")).one()
        assert storage.status == "failed" and "access denied" in storage.traceback


def test_job_missing_bucket_fails(api, live_server, moto_s3, tmp_path):
    storage_env = moto_s3
    project = make_project(api, IMAGE_CONFIG)
    env = job_env(
        live_server,
        spec_for(storage_env, project, "kl-no-such-bucket"),
        write_credentials(storage_env, tmp_path / "c"),
        tmp_path,
        "ns/missing",
    )
    code, result, _ = run_sync(env)
    assert code == 1 and result["status"] == "failed" and "does not exist" in result["message"]
    assert count_tasks(live_server, project) == 0


def test_job_bad_configuration(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBELABEL_")}
    env["KUBELABEL_RESULT_FILE"] = str(tmp_path / "r.json")
    code, result, _ = run_sync(env)
    assert code == 1 and result["status"] == "failed" and "KUBELABEL_API_URL" in result["message"]
    env |= {"KUBELABEL_API_URL": "http://127.0.0.1:9", "KUBELABEL_STORAGE_SPEC": json.dumps({"provider": "ftp"})}
    code, result, _ = run_sync(env)
    assert code == 1 and "invalid storage spec" in result["message"]


def test_job_export(api, live_server, moto_s3, tmp_path):
    project = make_project(api, TEXT_CONFIG)
    tasks = [{"data": {"text": f"t{i}"}, "annotations": [{"result": []}] if i < 3 else []} for i in range(4)]
    r = api.post(f"/api/projects/{project}/import?return_task_ids=true", json=tasks)
    assert r.status_code == 201, r.text
    ids = r.json()["task_ids"]
    bucket = moto_s3.new_bucket()
    spec = spec_for(moto_s3, project, bucket, direction="export", mode="tasks", prefix="labels/")
    env = job_env(live_server, spec, write_credentials(moto_s3, tmp_path / "c"), tmp_path, "ns/out")
    code, result, stderr = run_sync(env)
    assert code == 0, stderr
    assert result["status"] == "completed" and result["count"] == 3
    keys = sorted(o.key for o in moto_s3.provider(bucket).iter_objects())
    assert keys == sorted(f"labels/{tid}.json" for tid in ids[:3])


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
def test_job_sigterm_records_failure_and_rerun_resumes(api, live_server, moto_s3, tmp_path):
    total = 150
    project = make_project(api, IMAGE_CONFIG)
    bucket = moto_s3.new_bucket()
    provider = moto_s3.provider(bucket)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: provider.write(f"o/{i:05d}.jpg", b"j", "image/jpeg"), range(total)))
    env = job_env(
        live_server,
        spec_for(moto_s3, project, bucket),
        write_credentials(moto_s3, tmp_path / "c"),
        tmp_path,
        "ns/termed",
        KUBELABEL_SYNC_BATCH_SIZE="3",
    )
    proc = subprocess.Popen(sync_command(), env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 60
    while count_tasks(live_server, project) < 15 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    result = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    assert proc.returncode == 1
    assert result["status"] == "failed" and "SIGTERM" in result["message"]
    assert json.loads(Path(env["KUBELABEL_RESULT_FILE"]).read_text()) == result
    with live_server.session_factory() as session:
        storage = session.scalars(select(ImportStorage).where(ImportStorage.external_name == "ns/termed")).one()
        assert storage.status == "failed" and "resume" in storage.traceback
    assert count_tasks(live_server, project) < total

    code, result, _ = run_sync(env)
    assert code == 0 and result["status"] == "completed"
    assert count_tasks(live_server, project) == total
