"""Backup and restore times and peak RSS for N tasks, and at N/10: memory must stay flat.

    .venv/bin/python bench/backup.py [--tasks 1000000] [--backend sqlite|postgres|both]

Fills a fresh database (tasks with a sentence of text each, an annotation on every tenth task)
with one INSERT ... SELECT, then runs `kubelabel backup` into moto's S3 server and `kubelabel
restore` into a new empty database of the same kind, each as its own process, measuring wall
time and the process's peak RSS (wait4). Prints one line per run and the RSS ratio N : N/10.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import boto3
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api_server.db.migrate import upgrade  # noqa: E402
from tests.support.net import free_port, wait_for_port  # noqa: E402
from tests.support.processes import stop_process  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
TEXT = "'task ' || g || ': the quick brown fox jumps over the lazy dog, then labels it as positive or negative'"
ANNOTATION = '[{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]'


def new_database(backend: str, workdir: Path) -> str:
    if backend == "postgres":
        name = f"kl_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return "postgresql+psycopg://" + PG_ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + "/" + name
    path = workdir / uuid.uuid4().hex[:8] / "kubelabel.db"
    path.parent.mkdir(parents=True)
    return f"sqlite:///{path}"


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def project_sql(false: str, true: str, now: str) -> str:
    return (
        "INSERT INTO projects (title, label_config, description, expert_instruction, show_instruction,"
        " show_skip_button, enable_empty_annotation, show_annotation_history, maximum_annotations,"
        " overlap_cohort_percentage, show_overlap_first, sampling, skip_queue, review_required, model_version,"
        " min_annotations_to_start_training, start_training_on_annotation_update, evaluate_predictions_automatically,"
        f" color, is_published, is_draft, control_weights, created_at, updated_at) VALUES ('bench', '<View></View>',"
        f" '', '', {false}, {true}, {true}, {false}, 1, 100, {false}, 'Sequential sampling', 'REQUEUE_FOR_OTHERS',"
        f" {false}, '', 0, {false}, {false}, '#FFFFFF', {false}, {false}, '{{}}', {now}, {now})"
    )


def fill(url: str, tasks: int) -> None:
    upgrade(url)
    if url.startswith("postgresql"):
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn) as conn:
            conn.execute(project_sql("false", "true", "now()"))
            conn.execute(
                "INSERT INTO tasks (project_id, inner_id, data, meta, state, is_labeled, overlap, total_annotations,"
                " cancelled_annotations, total_predictions, created_at, updated_at)"
                f" SELECT 1, g, jsonb_build_object('text', {TEXT}), '{{}}', 'new', false, 1, 0, 0, 0, now(), now()"
                f" FROM generate_series(1, {tasks}) g"
            )
            conn.execute(
                "INSERT INTO annotations (task_id, project_id, result, was_cancelled, ground_truth, bulk_created,"
                f" created_at, updated_at) SELECT id, 1, '{ANNOTATION}', false, false, false, now(), now()"
                " FROM tasks WHERE id % 10 = 0"
            )
        return
    import sqlite3

    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    with conn:
        conn.execute(project_sql("0", "1", "datetime('now')"))
        conn.execute(
            f"WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {tasks})"
            " INSERT INTO tasks (project_id, inner_id, data, meta, state, is_labeled, overlap, total_annotations,"
            " cancelled_annotations, total_predictions, created_at, updated_at)"
            f" SELECT 1, g, json_object('text', {TEXT}), '{{}}', 'new', 0, 1, 0, 0, 0, datetime('now'),"
            " datetime('now') FROM s"
        )
        conn.execute(
            "INSERT INTO annotations (task_id, project_id, result, was_cancelled, ground_truth, bulk_created,"
            f" created_at, updated_at) SELECT id, 1, '{ANNOTATION}', 0, 0, 0, datetime('now'), datetime('now')"
            " FROM tasks WHERE id % 10 = 0"
        )
    conn.close()


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, stdout) of one `kubelabel` process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "kubelabel_cli", *argv], env=env, stdout=out, stderr=err,
                                cwd=ROOT)  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)  # the exit and this process's own resource usage
        seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            raise SystemExit(f"kubelabel {' '.join(argv)} failed: {err.read().decode()[-2000:]}")
        return seconds, usage.ru_maxrss / 1024, out.read().decode()


def run(backend: str, tasks: int, endpoint: str, workdir: Path, part_bytes: int | None) -> dict[str, float]:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                      aws_secret_access_key="bench")  # fmt: skip
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    source, target = new_database(backend, workdir), new_database(backend, workdir)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KUBELABEL_", "DATABASE_"))}
    base.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", KUBELABEL_BACKUP_ENDPOINT=endpoint,
                KUBELABEL_EGRESS_ALLOW="storage:loopback")  # fmt: skip
    if part_bytes:
        base["KUBELABEL_BACKUP_PART_BYTES"] = str(part_bytes)
    try:
        started = time.monotonic()
        fill(source, tasks)
        filled = time.monotonic() - started
        b_time, b_rss, out = measure(["backup", "--to", f"s3://{bucket}/bench"], {**base, "DATABASE_URL": source})
        uri = out.strip().splitlines()[-1]
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        stored = sum(o["Size"] for page in pages for o in page.get("Contents", []))
        r_time, r_rss, _ = measure(["restore", "--from", uri], {**base, "DATABASE_URL": target})
    finally:
        drop_database(source)
        drop_database(target)
    print(
        f"{backend:8} tasks={tasks:>9,} fill={filled:6.1f}s backup={b_time:6.1f}s rss={b_rss:6.1f}MiB "
        f"stored={stored / 2**20:7.1f}MiB restore={r_time:6.1f}s rss={r_rss:6.1f}MiB",
        flush=True,
    )
    return {"backup_rss": b_rss, "restore_rss": r_rss, "backup_s": b_time, "restore_s": r_time}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--part-bytes", type=int, help="KUBELABEL_BACKUP_PART_BYTES (default: the command's 16 MiB)")
    args = parser.parse_args()
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="kl-bench-backup-"))
    try:
        wait_for_port(port, timeout=60)
        endpoint = f"http://127.0.0.1:{port}"
        for backend in ("sqlite", "postgres") if args.backend == "both" else (args.backend,):
            small = run(backend, max(1, args.tasks // 10), endpoint, workdir, args.part_bytes)
            big = run(backend, args.tasks, endpoint, workdir, args.part_bytes)
            print(
                f"{backend:8} peak RSS at N over N/10: backup {big['backup_rss'] / small['backup_rss']:.2f}x, "
                f"restore {big['restore_rss'] / small['restore_rss']:.2f}x (tasks 10x; time "
                f"{big['backup_s'] / small['backup_s']:.1f}x / {big['restore_s'] / small['restore_s']:.1f}x)",
                flush=True,
            )
    finally:
        stop_process(moto)
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
