"""`kubelabel backup` / `kubelabel restore` as an operator runs them: subprocesses configured by env,
a real server's database (SQLite and PostgreSQL) and moto's S3 server.

A project with a few thousand tasks, annotations from three users, reviews, drafts, a webhook
and a storage is backed up while a thread keeps submitting annotations through the API; the
restore holds exactly the backup's snapshot (nothing half-present), and once writes stop a
second backup restores to a database equal to the source in every table. GCS and Azure (their
emulators) take the same commands, configured through KUBELABEL_STORAGE_SPEC as `kubelabel sync` is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from sqlalchemy import and_, create_engine, func, select

from api_server.db.models import Base
from tests.conftest import TEXT_CONFIG
from tests.support.apiserver import ADMIN_TOKEN, TEST_EGRESS_ALLOW, LiveServer, make_settings
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.labeling import choice, member, project_with_tasks

TASKS = 3000
# The round trip: 100,000 tasks. About 60-90 s per database on 2 cores (import, backup, two restores,
# two exports of every task); the other tests here use TASKS.
BIG = 100_000
# The snapshot's moment is known to within this (the clock is this machine's: the backup's process, or
# PostgreSQL's now() at the start of the backup's transaction).
MARGIN = 2.0


# --- helpers ---------------------------------------------------------------------------------------


def command_env(moto_s3, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_", "KUBELABEL_", "DATABASE_"))}
    env.update(
        DATABASE_URL=database_url,
        AWS_ACCESS_KEY_ID=moto_s3.credentials.aws_access_key_id or "",
        AWS_SECRET_ACCESS_KEY=moto_s3.credentials.aws_secret_access_key or "",
        KUBELABEL_BACKUP_ENDPOINT=moto_s3.endpoint,
        KUBELABEL_EGRESS_ALLOW=TEST_EGRESS_ALLOW,  # moto listens on 127.0.0.1
        KUBELABEL_STORAGE_CREDENTIALS_DIR="/nonexistent",
    )
    env.update(extra)
    return env


def kubelabel(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubelabel_cli", *args], env=env, capture_output=True, text=True, timeout=300
    )


def backup(moto_s3, database_url: str, to: str, *extra: str) -> str:
    done = kubelabel("backup", "--to", to, *extra, env=command_env(moto_s3, database_url))
    assert done.returncode == 0, done.stderr
    uri = done.stdout.strip().splitlines()[-1]
    assert uri.startswith(to + "/") and uri.endswith("/"), done.stdout
    return uri


def s3(moto_s3):
    return boto3.client(
        "s3", endpoint_url=moto_s3.endpoint, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )  # fmt: skip


def keys(moto_s3, bucket: str) -> list[str]:
    pages = s3(moto_s3).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def manifest_of(moto_s3, uri: str) -> dict[str, Any]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return json.loads(s3(moto_s3).get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())


def table_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of the models, every row, in primary-key order."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                for t in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


class Writer(threading.Thread):
    """Submits one annotation after another through the API until stopped."""

    def __init__(self, client, task_ids: list[int]) -> None:
        super().__init__(name="annotation-writer", daemon=True)
        self.client, self.task_ids = client, task_ids
        self.done: list[int] = []
        self.log: list[tuple[int, int, float, float]] = []  # (annotation, task, sent, answered) in time.time()
        self.stop = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        for task in self.task_ids:
            if self.stop.is_set():
                return
            sent = time.time()
            r = self.client.post(f"/api/tasks/{task}/annotations/", json={"result": choice("Neutral")})
            if r.status_code != 201:
                self.error = f"{r.status_code} {r.text}"
                return
            self.log.append((r.json()["id"], task, sent, time.time()))
            self.done.append(r.json()["id"])

    def wait_for(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.done) < n:
            assert self.error is None, self.error
            assert time.monotonic() < deadline, f"the writer made {len(self.done)} of {n} annotations"
            time.sleep(0.05)


def populate(api, live_server, moto_s3, tasks: int = TASKS) -> tuple[int, list[int], list]:
    """The project: `tasks` tasks (one bulk import), 3 annotators' work, reviews, drafts, a webhook, a storage."""
    project, tasks = project_with_tasks(api, TEXT_CONFIG, tasks)
    pid = project["id"]
    annotators = [member(api, live_server, pid, "annotator", f"ann{i}") for i in range(3)]
    reviewer = member(api, live_server, pid, "reviewer", "rev")
    annotations = []
    for i, client in enumerate(annotators):
        for task in tasks[i * 40 : (i + 1) * 40]:
            r = client.post(f"/api/tasks/{task}/annotations/", json={"result": choice(("Positive", "Negative")[i % 2])})
            assert r.status_code == 201, r.text
            annotations.append(r.json()["id"])
    for n, annotation in enumerate(annotations[::4]):
        r = reviewer.post(f"/api/annotations/{annotation}/review", json={"accepted": n % 3 != 0, "comment": f"r{n}"})
        assert r.status_code == 201, r.text
    for task in tasks[200:210]:
        r = annotators[0].post(f"/api/tasks/{task}/drafts", json={"result": choice(), "lead_time": 1.5})
        assert r.status_code == 201, r.text
    # Inactive: deliveries would keep changing rows after the writes stop.
    r = api.post("/api/webhooks/", json={"url": "http://127.0.0.1:9/hook", "project": pid, "is_active": False})
    assert r.status_code == 201, r.text
    bucket = moto_s3.new_bucket()
    r = api.post(
        "/api/storages/export/s3",
        json={"project": pid, "title": "out", "bucket": bucket, "s3_endpoint": moto_s3.endpoint,
              "region_name": "us-east-1", "export_on_save": False},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    for client in (*annotators, reviewer):
        client.close()
    return pid, tasks, annotations


def assert_consistent(url: str) -> None:
    """No submission half-present: every task's counter, state and history match its annotations.

    In SQL (one pass over 100,000 tasks in Python took seconds): the tasks that break a rule, none expected."""
    tasks = Base.metadata.tables["tasks"]
    annotations = Base.metadata.tables["annotations"]
    transitions = Base.metadata.tables["task_transitions"]
    made = (
        select(func.count())
        .where(annotations.c.task_id == tasks.c.id, annotations.c.was_cancelled.is_(False))
        .scalar_subquery()
    )
    history = select(func.count()).where(transitions.c.task_id == tasks.c.id).scalar_subquery()
    broken = {
        "total_annotations differs from its annotations": tasks.c.total_annotations != made,
        "completed but not labeled": and_(tasks.c.state == "completed", tasks.c.is_labeled.is_(False)),
        "new with history, or history-less but not new": (tasks.c.state == "new") != (history == 0),
        "annotated but still new": and_(made > 0, tasks.c.state == "new"),
    }
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            for rule, where in broken.items():
                found = conn.execute(select(tasks.c.id).where(where).limit(5)).scalars().all()
                assert not found, f"tasks {found}: {rule}"
    finally:
        engine.dispose()


def counts(url: str) -> dict[str, int]:
    """Rows per table of the models."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def annotation_ids(url: str) -> set[int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(select(Base.metadata.tables["annotations"].c.id)).scalars())
    finally:
        engine.dispose()


@pytest.fixture
def empty_database(live_server, tmp_path):
    """A URL of a new, empty database of the server's kind (dropped afterwards)."""
    made: list[str] = []

    def make(kind: str | None = None) -> str:
        if (kind or live_server.backend) == "postgres":
            made.append(create_postgres_database())
            return made[-1]
        path = tmp_path / f"restored-{len(made)}" / "kubelabel.db"
        made.append(f"sqlite:///{path}")
        return made[-1]

    yield make
    for url in made:
        if url.startswith("postgresql"):
            drop_postgres_database(url)


# --- tests -----------------------------------------------------------------------------------------


def test_backup_under_writes_restores_its_snapshot_then_quiet_everything(api, live_server, moto_s3, empty_database):
    pid, tasks, annotations = populate(api, live_server, moto_s3)
    bucket = moto_s3.new_bucket()
    source = live_server.database_url
    with member(api, live_server, pid, "annotator", "writer") as client:
        writer = Writer(client, tasks[1000:])
        writer.start()
        try:
            writer.wait_for(10)
            before = set(writer.done)
            uri = backup(moto_s3, source, f"s3://{bucket}/nightly")
            during = len(writer.done)
            writer.wait_for(during + 10)  # and go on writing after the backup's snapshot
        finally:
            writer.stop.set()
            writer.join(timeout=30)
        assert writer.error is None, writer.error
    assert during > len(before), "no annotation was written while the backup ran"

    manifest = manifest_of(moto_s3, uri)
    assert manifest["kind"] == ("sqlite" if live_server.backend == "sqlite" else "postgresql")
    assert manifest["revision"] and manifest["tables"]["tasks"] == TASKS
    assert all(len(p["sha256"]) == 64 for s in manifest["streams"] for p in s["parts"])

    target = empty_database()
    done = kubelabel("restore", "--from", uri, env=command_env(moto_s3, target))
    assert done.returncode == 0, done.stderr
    restored, now = table_rows(target), table_rows(source)
    # Exactly the manifest's snapshot: counts, and the consistency of every task with its annotations.
    assert {t: len(r) for t, r in restored.items() if r or t in manifest["tables"]} == {
        t: n for t, n in manifest["tables"].items() if n or t in restored
    }
    assert_consistent(target)
    kept = {r[0] for r in restored["annotations"]}
    assert set(annotations) | before <= kept  # everything committed before the backup started
    assert kept < {r[0] for r in now["annotations"]}  # and not what came after the snapshot
    # Rows the writer does not change afterwards are the source's, value for value.
    for table in ("users", "project_members", "projects", "annotations", "reviews", "task_transitions", "drafts",
                  "webhooks", "export_storages"):  # fmt: skip
        assert restored[table], table
        assert all(r in now[table] for r in restored[table]), table

    # Ids go on past the restored ones: the restored database takes new work.
    restored_max = max(kept)
    engine = create_engine(target)
    try:
        with engine.begin() as conn:
            table = Base.metadata.tables["annotations"]
            first = {k: v for k, v in conn.execute(select(table).limit(1)).mappings().one().items() if k != "id"}
            new_id = conn.execute(table.insert().values(first).returning(table.c.id)).scalar_one()
            assert new_id > restored_max
    finally:
        engine.dispose()

    # Quiet now: a second backup (the first pruned with --keep 1) restores to an equal database.
    quiet = backup(moto_s3, source, f"s3://{bucket}/nightly", "--keep", "1")
    assert not [k for k in keys(moto_s3, bucket) if k.startswith(uri.split("/", 3)[3])]  # pruned
    again = empty_database()
    done = kubelabel("restore", "--from", quiet, env=command_env(moto_s3, again))
    assert done.returncode == 0, done.stderr
    assert table_rows(again) == table_rows(source)

    if live_server.backend == "sqlite":  # across kinds: an SQLite backup into PostgreSQL
        other = empty_database("postgres")
        done = kubelabel("restore", "--from", quiet, env=command_env(moto_s3, other))
        assert done.returncode == 0, done.stderr
        assert table_rows(other) == table_rows(source)


def serve(url: str, backend: str, data_dir: Path) -> LiveServer:
    """An API server on a restored database."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return LiveServer(backend, url, data_dir, make_settings(url, data_dir)).start()


def export(server_url: str, pid: int) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Token {ADMIN_TOKEN}"}
    r = httpx.get(f"{server_url}/api/projects/{pid}/export?exportType=JSON", headers=headers, timeout=300)
    assert r.status_code == 200, r.text
    return sorted(r.json(), key=lambda t: t["id"])


def test_100k_tasks_backed_up_while_three_annotators_submit(api, live_server, moto_s3, empty_database, tmp_path):
    """The issue's round trip (BIG tasks): three annotators keep submitting while the backup runs; the restore
    holds every submission answered before the snapshot, none sent after it, and none half, and its export is
    the source's at the snapshot."""
    pid, tasks, annotations = populate(api, live_server, moto_s3, BIG)
    bucket = moto_s3.new_bucket()
    source = live_server.database_url
    clients = [member(api, live_server, pid, "annotator", f"writer{i}") for i in range(3)]
    # Disjoint tasks, past the ones populate annotated: each submission is one task's first annotation.
    writers = [Writer(c, tasks[1000 + i * 20_000 : 1000 + (i + 1) * 20_000]) for i, c in enumerate(clients)]
    for writer in writers:
        writer.start()
    try:
        for writer in writers:
            writer.wait_for(5)
        uri = backup(moto_s3, source, f"s3://{bucket}/big")
        manifest = manifest_of(moto_s3, uri)
        snapshot = datetime.fromisoformat(manifest["snapshot_at"]).timestamp()
        # Go on writing well past the snapshot, so "nothing after it" is tested on real submissions.
        while time.time() < snapshot + MARGIN:
            time.sleep(0.1)
        for writer in writers:
            writer.wait_for(len(writer.done) + 5)
    finally:
        for writer in writers:
            writer.stop.set()
        for writer in writers:
            writer.join(timeout=30)
        for client in clients:
            client.close()
    assert all(w.error is None for w in writers), [w.error for w in writers]
    assert manifest["tables"]["tasks"] == BIG

    target = empty_database()
    done = kubelabel("restore", "--from", uri, env=command_env(moto_s3, target))
    assert done.returncode == 0, done.stderr
    restored = counts(target)
    assert {t: n for t, n in restored.items() if n or t in manifest["tables"]} == {
        t: n for t, n in manifest["tables"].items() if n or t in restored
    }
    assert_consistent(target)  # no submission half present
    kept = annotation_ids(target)
    log = [entry for writer in writers for entry in writer.log]
    before = [i for i, _, _, answered in log if answered < snapshot]
    after = [i for i, _, sent, _ in log if sent > snapshot + MARGIN]
    assert len(before) >= 15 and len(after) >= 15, (len(before), len(after))
    assert set(annotations) | set(before) <= kept, "a submission answered before the snapshot is missing"
    assert not set(after) & kept, "a submission sent after the snapshot is in the backup"
    assert kept <= annotation_ids(source)

    # The restored project's export is the source's as it was at the snapshot: the source's now, without
    # the tasks first annotated after it (each writer's task had no annotation before).
    later = {task for i, task, _, _ in log if i not in kept}
    server = serve(target, live_server.backend, tmp_path / "restored-data")
    try:
        copy = export(server.url, pid)
        with server.client() as client:
            assert client.get(f"/api/projects/{pid}/").json()["task_number"] == BIG
    finally:
        server.stop()
    original = export(live_server.url, pid)  # every annotated task, with its annotations and reviews
    assert copy == [t for t in original if t["id"] not in later]
    assert len(copy) >= len(set(annotations)) + len(before)


def test_killed_backup_leaves_no_manifest_and_restore_refuses(api, live_server, moto_s3, empty_database):
    project_with_tasks(api, TEXT_CONFIG, TASKS)
    bucket = moto_s3.new_bucket()
    source = live_server.database_url
    # Tiny parts: many uploads, so the kill lands mid-stream.
    env = command_env(moto_s3, source, KUBELABEL_BACKUP_PART_BYTES="1024")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubelabel_cli", "backup", "--to", f"s3://{bucket}/b"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not [k for k in keys(moto_s3, bucket) if k.endswith(".gz")]:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no part was written"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    left = keys(moto_s3, bucket)
    assert left and not [k for k in left if k.endswith("manifest.json")], left
    killed = f"s3://{bucket}/" + left[0].rsplit("/", 2)[0] + "/"

    # No manifest: refused, and nothing is written into the target.
    target = empty_database()
    done = kubelabel("restore", "--from", killed, env=command_env(moto_s3, target))
    assert done.returncode == 1 and "incomplete" in done.stderr and "manifest.json" in done.stderr, done.stderr
    if target.startswith("sqlite"):
        assert not Path(target.removeprefix("sqlite:///")).exists()

    # The next run succeeds (and --keep clears the killed run's leftovers, older than what it keeps).
    uri = backup(moto_s3, source, f"s3://{bucket}/b", "--keep", "1")
    assert uri != killed and not [k for k in keys(moto_s3, bucket) if killed.split("/", 3)[3] in k]

    # A non-empty target is refused, naming why; it is left as it was.
    before = table_rows(source)
    done = kubelabel("restore", "--from", uri, env=command_env(moto_s3, source))
    assert done.returncode == 1 and "not empty" in done.stderr and "tasks" in done.stderr, done.stderr
    assert table_rows(source) == before

    # A URI that is not ours at all: a clear error, not a traceback.
    done = kubelabel("restore", "--from", "ftp://x/y", env=command_env(moto_s3, target))
    assert done.returncode == 1 and "s3://" in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
@pytest.mark.parametrize("emulator", ["gcs_emulator", "azurite"])
def test_gcs_and_azure_configured_as_sync_is(api, live_server, empty_database, emulator, request):
    """The same commands on gs:// and azure-blob://, endpoint and account from KUBELABEL_STORAGE_SPEC."""
    env_of = request.getfixturevalue(emulator)
    project_with_tasks(api, TEXT_CONFIG, 50)
    bucket = env_of.new_bucket()
    scheme = {"gcs": "gs", "azure": "azure-blob"}[env_of.kind]
    spec = {"endpoint": env_of.endpoint, "googleProjectId": env_of.extra.get("project_id"),
            "accountName": env_of.extra.get("account_name")}  # fmt: skip
    connection = env_of.credentials.azure_storage_connection_string

    def env(url: str) -> dict[str, str]:
        values = command_env(env_of, url, KUBELABEL_STORAGE_SPEC=json.dumps(spec))
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "KUBELABEL_BACKUP_ENDPOINT"):
            values.pop(name)
        if connection:
            values["AZURE_STORAGE_CONNECTION_STRING"] = connection
        return values

    done = kubelabel("backup", "--to", f"{scheme}://{bucket}/p", "--keep", "1", env=env(live_server.database_url))
    assert done.returncode == 0, done.stderr
    uri = done.stdout.strip().splitlines()[-1]
    assert uri.startswith(f"{scheme}://{bucket}/p/")
    target = empty_database()
    done = kubelabel("restore", "--from", uri, env=env(target))
    assert done.returncode == 0, done.stderr
    assert table_rows(target) == table_rows(live_server.database_url)
