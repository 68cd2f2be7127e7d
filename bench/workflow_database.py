"""The labeling loop's database share alone: PostgreSQL driven by pgbench with the API's two calls (run by hand).

bench/workflow.py measures the whole stack on one machine: annotators, API server and
PostgreSQL share its cores. This bench takes the API server out: the same setup (a fresh
database migrated by `kubelabel serve`, a project, N annotators, bulk-inserted tasks), then
pgbench (C, one connection per annotator, prepared statements) runs, per annotator and as
fast as it can or paced with `--rate`, exactly the statements the API's PostgreSQL path
sends: `kubelabel_next_task`, then `kubelabel_submit_checked` on the task it returned (its
listener check built by api_server/workflow/pg_loop.py). What it prints bounds what any API
server could reach on this machine: annotations/s, latency of next + submit together
(pgbench times a cycle, not each call; the mean of each is printed), and PostgreSQL's CPU
per annotation.

`--webhooks N` adds N webhooks on ANNOTATION_CREATED to local receivers (bench/subscribers.py)
and hands pgbench the project's payload form, as the API does: each submission then writes its
deliveries in its own statement, and the server's delivery engine claims, sends and settles them
on the same database. Its figure is then the database's whole share of the webhooks.

    .venv/bin/python bench/workflow_database.py                 # 16 annotators, as fast as they can
    .venv/bin/python bench/workflow_database.py --rate 500      # 500 annotations/s offered
    .venv/bin/python bench/workflow_database.py --webhooks 1    # with one webhook

Needs pgbench (PostgreSQL's client tools) on PATH or where `pg_config --bindir` says.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psycopg
from apiserver import CpuMeter, Server
from subscribers import Subscribers
from workflow import (
    EGRESS,
    RESULT,
    add_load_arguments,
    backlog,
    check,
    deliveries_not_failed,
    percentile,
    setup,
    subscribe,
    yardstick,
)

from api_server.db.session import make_engine, make_session_factory
from api_server.settings import Settings
from api_server.webhooks import service as webhook_service
from api_server.wiring import wire
from api_server.workflow import pg_loop

# The submission's parameters that stay NULL in the API's calls for a plain submission.
NULLS = ("parent_prediction", "parent_annotation", "import_id", "draft_created_at")
PLACEHOLDER = re.compile(r"%\((\w+)\)s")  # psycopg's named parameters


def pgbench() -> str:
    found = shutil.which("pgbench")
    if found is None and (pg_config := shutil.which("pg_config")):
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
        found = shutil.which("pgbench", path=bindir)
    packaged = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))  # Debian's layout
    found = found or (packaged[-1] if packaged else None)
    if found is None:
        sys.exit("pgbench not found: install PostgreSQL's client tools (e.g. postgresql-client)")
    return found


def wal(dsn: str) -> tuple[int, int]:
    """WAL records and bytes written so far, server-wide (pg_stat_wal, PostgreSQL 14+)."""
    with psycopg.connect(dsn) as conn:
        records, size = conn.execute("SELECT wal_records, wal_bytes FROM pg_stat_wal").fetchone()
    return int(records), int(size)


def script(first_user: int) -> str:
    """One annotator's cycle in pgbench's language; constants come in as -D variables (bound parameters)."""
    given = {"task_id": ":tid", "user_id": ":uid", "now": "now()", **dict.fromkeys(NULLS, "NULL")}
    # pgbench's variables are text: NULL spelled out stands for none.
    given |= {"project_form": "nullif(:project_form::text, 'NULL')"}
    given |= {"project_updated": "nullif(:project_updated::text, 'NULL')::timestamptz"}
    wire()  # the submission's listener check is built from the event subscribers, as in the API
    submit = PLACEHOLDER.sub(lambda m: given.get(m[1], f":{m[1]}"), pg_loop._submit_checked())
    submit = submit.replace("%%", "%")  # psycopg's escape of a literal `%` (the payloads' modulo)
    # pgbench takes `:MI` even inside a string for a variable: the payloads' time format spells its
    # colons otherwise (a constant expression, folded when the statement is planned).
    submit = submit.replace("HH24:MI:SS'", "HH24' || chr(58) || 'MI' || chr(58) || 'SS'")
    return (
        f"\\set uid {first_user} + :client_id\n"
        "SELECT id AS tid FROM kubelabel_next_task(:project_id, :uid, false, :allowed, now(), :ttl, :moves) \\gset\n"
        f"{' '.join(submit.split())};\n"
    )


def variables(project_id: int, rules: str, form: webhook_service.KeptForm | None) -> dict[str, str]:
    return {
        # The project's payload form as the API passes it, or NULL: no delivery is written with a submission.
        "project_form": form.text if form else "NULL",
        "project_updated": form.updated.isoformat() if form else "NULL",
        "project_id": str(project_id),
        "allowed": pg_loop.LABELERS_ARRAY,
        "ttl": str(Settings().task_lock_ttl_seconds),
        "moves": pg_loop.MOVES_ARRAY,
        "admin": "false",
        "rules": rules,
        "result": orjson.dumps(RESULT).decode(),
        "was_cancelled": "false",
        "ground_truth": "false",
        "lead_time": "1.0",
        "last_action": "submitted",
    }


def project_form(server: Server, project_id: int) -> webhook_service.KeptForm:
    """The project's payload form, made as the API's background makes it."""
    engine = make_engine(server.dsn)
    try:
        webhook_service.make_project_form(make_session_factory(engine), project_id)
        form = webhook_service.kept_project_form(engine, project_id)
        assert form is not None
        return form
    finally:
        engine.dispose()


def run(args: argparse.Namespace) -> None:
    binary = pgbench()
    server = Server("postgres", env={"KUBELABEL_EGRESS_ALLOW": EGRESS}).start()
    subs: Subscribers | None = None
    work = Path(tempfile.mkdtemp(prefix="kl-bench-pgbench-"))
    try:
        pace = f"paced to {args.rate:g} annotations/s in all" if args.rate else "each as fast as it can"
        print(
            f"PostgreSQL alone (pgbench): {args.tasks} tasks, {args.annotators} annotators ({pace}),"
            f" overlap {args.overlap}, {args.sampling}"
        )
        speed_before = yardstick()
        project_id, _ = setup(server, "postgres", args)
        subs = subscribe(server, project_id, args) if args.webhooks else None
        form = project_form(server, project_id) if subs else None
        with psycopg.connect(server.dsn) as conn:
            users = [r[0] for r in conn.execute("SELECT id FROM users WHERE username LIKE 'annotator%' ORDER BY id")]
            rules = conn.execute(  # the fingerprint as kubelabel_submit_checked (migration 0005) computes it
                "SELECT md5(label_config) || ':' || show_skip_button::text || ':' || enable_empty_annotation::text"
                " FROM projects WHERE id = %s",
                (project_id,),
            ).fetchone()[0]
        if users != list(range(users[0], users[0] + len(users))):
            raise RuntimeError("the annotators' user ids are not consecutive")
        (work / "cycle.sql").write_text(script(users[0]))
        threads = str(os.cpu_count() or 1)
        command = [binary, "-n", "-M", "prepared", "-r", "-c", str(args.annotators), "-j", threads]
        command += ["-T", str(math.ceil(args.warmup + args.seconds)), "-l", f"--log-prefix={work / 'cycles'}"]
        command += [f"-D{name}={value}" for name, value in variables(project_id, rules, form).items()]
        command += ["--rate", str(args.rate)] if args.rate else []
        command += ["-f", str(work / "cycle.sql"), server.dsn]
        meter = CpuMeter(server)
        bench = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The warm-up (connections opened, functions compiled per backend) is not measured.
        time.sleep(args.warmup)
        measure_from, (_, db_before), wal_before = time.time(), meter.sample(), wal(server.dsn)
        # The backends' CPU is read while they still exist, just before pgbench stops.
        time.sleep(args.seconds - 0.5)
        measure_to, (_, db_after), wal_after = time.time(), meter.sample(), wal(server.dsn)
        out, err = bench.communicate()
        if bench.returncode != 0:
            raise RuntimeError(f"pgbench failed:\n{out[-2000:]}\n{err[-2000:]}")
        # The log: a line per cycle, its latency third (microseconds; with --rate counted from when it
        # was due), its end fifth and sixth (epoch seconds, microseconds).
        cycles = []
        for log in work.glob("cycles.*"):
            for line in log.read_text().splitlines():
                fields = line.split()
                if measure_from <= int(fields[4]) + int(fields[5]) / 1e6 < measure_to:
                    cycles.append(int(fields[2]) / 1000)
        # pgbench -r: each statement's mean latency (ms), its failures (PostgreSQL 15+), its text.
        latency = re.compile(r"\s+([\d.]+)\s+(?:\d+\s+)?(?:SELECT|WITH)\b")
        means = [m[1] for line in out.splitlines() if (m := latency.match(line))]
        elapsed = measure_to - measure_from
        print(f"  {len(cycles)} annotations in {elapsed:.1f} s = {len(cycles) / elapsed:.0f} annotations/s")
        print(
            f"  next + submit ms: p50 {percentile(cycles, 0.5):.1f}  p90 {percentile(cycles, 0.9):.1f}"
            f"  p99 {percentile(cycles, 0.99):.1f}  max {max(cycles, default=float('nan')):.1f}"
            f"  (means over the whole run incl. warm-up: next {means[0]}, submit {means[1]})"
        )
        per = 1 / max(len(cycles), 1)
        records, size = ((after - before) * per for before, after in zip(wal_before, wal_after, strict=True))
        print(
            f"  PostgreSQL per annotation: {(db_after - db_before) * 1000 * per:.2f} ms CPU,"
            f" {records:.1f} WAL records, {size / 1024:.2f} KiB of WAL (server-wide)"
        )
        print(f"  {check('postgres', server.dsn, args.overlap)}")
        print(f"  machine yardstick (see bench/workflow.py): {speed_before:.2f} before, {yardstick():.2f} after")
        if subs is not None:
            deadline = time.monotonic() + 30  # the last deliveries sent (lag p99 is under a second)
            while (
                sum(received := subs.counts()) < (written := deliveries_not_failed("postgres", server.dsn))
                and time.monotonic() < deadline
            ):
                time.sleep(0.1)
            subs.stop()
            subs = None
            # pgbench's statements write their deliveries themselves (the API's metrics count only the fan-out's).
            fanned = int(backlog(server.url).get("written by sql", 0))
            print(
                f"  deliveries received, per webhook: {received}; written with their submission {written - fanned},"
                f" by the fan-out {fanned}"
            )
    finally:
        if subs is not None:
            subs.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_load_arguments(parser)  # --rate offers Poisson arrivals here (pgbench's pacing)
    parser.add_argument("--webhooks", type=int, default=0, help="webhooks on ANNOTATION_CREATED to local receivers")
    parser.set_defaults(broken=None, export_storage=False)  # what bench/workflow.py's subscribe also reads
    run(parser.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())
