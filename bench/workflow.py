"""Labeling workflow under load: concurrent annotators pulling /next and submitting (run by hand).

Starts `kubelabel serve` as a subprocess per backend (fresh SQLite file / fresh PostgreSQL
database), creates a project and N annotators (users, tokens, memberships) over HTTP,
bulk-inserts the tasks with SQL (setup speed; the import API has its own bench), then runs
one thread per annotator, each with its own keep-alive connection, doing
GET /api/projects/{id}/next -> POST /api/tasks/{id}/annotations/ as fast as it can for a
fixed time, or paced so that all together offer `--rate` annotations/s; the first `--warmup`
seconds are not measured. Prints next-task and submit latency percentiles (client side, so
they include queueing in the server), submitted annotations/s, the server's CPU use, and checks the
result in the database (no task over its overlap, no annotator twice on a task).

    .venv/bin/python bench/workflow.py                          # 100k tasks, 16 annotators, both databases
    .venv/bin/python bench/workflow.py --backends postgres --seconds 30 --sampling "Uniform sampling"
    .venv/bin/python bench/workflow.py --backends postgres --workers 2 --rate 400   # latency at a set load

As fast as it can, every annotator is a request in flight at all times: the machine is
saturated, and next-task latency is mostly the wait for a core (by Little's law, about
annotators / throughput per next + submit). Paced, the latencies are those of the server at
that load.

Targets (this machine, PostgreSQL): next-task p99 < 20 ms, >= 500 annotations/s.

Subscribers (`--webhooks N`, `--broken 500|timeout`, `--export-storage`): each backend runs twice,
back to back on fresh servers, without and then with them: N webhooks on ANNOTATION_CREATED to
local receivers (HTTP/1.1 keep-alive, answering 200 at once; in a process of their own), one more
that answers 500 or times out, an export storage writing each annotated task to an S3 emulator
bucket. Printed: annotations/s of both runs and their ratio, the healthy receivers' delivery lag
(arrival - the annotation's creation) p50/p99 during the load, when the last delivery arrived
after the load ended, and the bucket's objects against the annotated tasks. `--repeat N` runs
the pair N times, every other one with the subscribers first, and prints the median ratio (the
machine's speed moves between runs by more than a subscriber costs). `--job-workers N` starts N
`kubelabel worker` processes beside the server, through Redis (BENCH_REDIS, default
redis://127.0.0.1:6379/0, a key prefix of their own): the API then leaves events and jobs to
them, as a deployment with a worker does.

`--alternate S` (with `--webhooks N` alone) measures the same ratio within one run: the webhooks
are switched off and on every S seconds of the load (PATCH is_active), each part measured after
its first second, and the parts' rates and CPU per annotation (the server, the database's
backends and its own processes, this client, the receivers) compared: on and off alike meet
the machine's drift, which pairs of runs minutes apart do not. Of the server's: its request
threads' CPU, how often they blocked and lost their core, and (one process, no job workers) its
CPU per annotation without the webhooks against with them, which the rate follows there.

    .venv/bin/python bench/workflow.py --tasks 20000 --webhooks 1
    .venv/bin/python bench/workflow.py --tasks 20000 --webhooks 1 --backends postgres --job-workers 1 --repeat 3
    .venv/bin/python bench/workflow.py --tasks 20000 --webhooks 2 --broken timeout --export-storage
    .venv/bin/python bench/workflow.py --tasks 30000 --seconds 60 --webhooks 1 --alternate 5
"""

from __future__ import annotations

import argparse
import bisect
import gc
import os
import random
import re
import socket
import sqlite3
import statistics
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import cast

import httpx
import orjson
import psutil
import psycopg
from apiserver import TOKEN, CpuMeter, Server
from subscribers import Subscribers

# Webhook receivers and the S3 emulator listen on 127.0.0.1.
EGRESS = "webhook:private+loopback,storage:private+loopback"

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/></Choices>
</View>"""
RESULT = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def insert_tasks(backend: str, dsn: str, project_id: int, n: int, overlap: int, scored: bool) -> None:
    """Bulk-insert tasks straight into the tasks table (COPY on PostgreSQL)."""
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    rnd = random.Random(7)
    columns = (
        "project_id, inner_id, data, meta, state, is_labeled, overlap, total_annotations, "
        "cancelled_annotations, total_predictions, prediction_score, created_at, updated_at"
    )

    def rows():
        for i in range(1, n + 1):
            score = rnd.random() if scored else None
            data = orjson.dumps({"text": f"Task {i}: the quick brown fox jumps over the lazy dog."}).decode()
            yield (project_id, i, data, "{}", "new", False, overlap, 0, 0, 0, score, now, now)

    if backend == "postgres":
        with psycopg.connect(dsn) as conn, conn.cursor() as cur:
            with cur.copy(f"COPY tasks ({columns}) FROM STDIN") as copy:
                for row in rows():
                    copy.write_row(row)
            cur.execute("ANALYZE tasks")
    else:
        with sqlite3.connect(dsn) as conn:
            marks = ", ".join("?" * 13)
            conn.executemany(f"INSERT INTO tasks ({columns}) VALUES ({marks})", rows())
            conn.execute("ANALYZE")


def setup(server: Server, backend: str, args: argparse.Namespace) -> tuple[int, list[str]]:
    admin = httpx.Client(base_url=server.url, headers={"Authorization": f"Token {TOKEN}"}, timeout=60)
    r = admin.post(
        "/api/projects/",
        json={"title": "bench", "label_config": CONFIG, "maximum_annotations": args.overlap, "sampling": args.sampling},
    )
    r.raise_for_status()
    pid = r.json()["id"]
    tokens = []
    for i in range(args.annotators):
        user = admin.post("/api/users/", json={"username": f"annotator{i}"}).json()["id"]
        tokens.append(admin.post(f"/api/users/{user}/token/").json()["token"])
        admin.post(f"/api/projects/{pid}/members/", json={"user": user, "role": "annotator"}).raise_for_status()
    started = time.perf_counter()
    insert_tasks(backend, server.dsn, pid, args.tasks, args.overlap, args.sampling == "Uncertainty sampling")
    print(f"  inserted {args.tasks} tasks in {time.perf_counter() - started:.1f} s")
    admin.close()
    return pid, tokens


@dataclass
class Tally:
    measure_from: float = float("inf")  # cycles due before this (the warm-up) are not counted
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    submitted_at: list[float] = field(default_factory=list)  # when each counted submission was answered
    submitted: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class Pace:
    """When an annotator starts each cycle: every `period` seconds from `start`, or at once (period 0).

    A paced annotator that falls behind starts at once, and its next-task latency is counted
    from when the cycle was due, not when it could start: the wait it was made to do is the
    server's latency too (no coordinated omission).
    """

    start: float
    period: float = 0.0
    cycle: int = 0

    def due(self) -> float:
        if not self.period:
            return time.perf_counter()
        due = self.start + self.cycle * self.period
        self.cycle += 1
        if (wait := due - time.perf_counter()) > 0:
            time.sleep(wait)
        return due


class Connection:
    """One keep-alive HTTP/1.1 connection doing only what the annotators need, cheaply.

    The client shares the machine's cores with the server and the database: http.client (which
    parses every response's headers with the email package) cost 0.4-0.5 ms of CPU per
    annotation, a tenth of the whole. Responses must carry Content-Length (ours do).
    """

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def request(self, message: bytes) -> tuple[int, bytes]:
        self.sock.sendall(message)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._receive()
        head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
        length = CONTENT_LENGTH.search(head)
        if length is None:
            raise RuntimeError(f"a response without Content-Length: {head[:200]!r}")
        size = int(length[1])
        while len(self.buffer) < size:
            self._receive()
        body, self.buffer = self.buffer[:size], self.buffer[size:]
        return int(head[9:12]), body

    def _receive(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


def annotator(
    port: int, token: str, pid: int, stop: threading.Event, tally: Tally, lock: threading.Lock, pace: Pace
) -> None:
    conn = Connection(port)
    headers = f"Host: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\n"
    body = orjson.dumps({"result": RESULT, "lead_time": 1.0})
    next_request = f"GET /api/projects/{pid}/next HTTP/1.1\r\n{headers}\r\n".encode()
    submit_head = f"{headers}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    next_ms, submit_ms, submitted_at, done = [], [], [], 0
    try:
        while not stop.is_set():
            t0 = pace.due()
            counted = t0 >= tally.measure_from
            status, payload = conn.request(next_request)
            if counted:
                next_ms.append((time.perf_counter() - t0) * 1000)
            if status == 404:
                break
            if status != 200:
                raise RuntimeError(f"next: {status} {payload[:200]!r}")
            task = orjson.loads(payload)["id"]
            t0 = time.perf_counter()
            status, payload = conn.request(b"POST /api/tasks/%d/annotations/ HTTP/1.1\r\n" % task + submit_head + body)
            if status != 201:
                raise RuntimeError(f"submit: {status} {payload[:200]!r}")
            if counted:
                answered = time.perf_counter()
                submit_ms.append((answered - t0) * 1000)
                submitted_at.append(answered)
                done += 1
    except Exception as exc:
        with lock:
            tally.errors.append(repr(exc))
    finally:
        conn.close()
        with lock:
            tally.next_ms += next_ms
            tally.submit_ms += submit_ms
            tally.submitted_at += submitted_at
            tally.submitted += done


_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The server's /metrics: each sample's labels and value, by metric name."""
    found: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if sample := _SAMPLE.match(line):
            found[sample[1]].append((dict(_LABEL.findall(sample[2] or "")), float(sample[3])))
    return found


def next_histogram(url: str) -> dict[float, float]:
    """Cumulative bucket counts of the server's kubelabel_next_task_duration_seconds histogram."""
    return {float(labels["le"]): v for labels, v in scrape(url)["kubelabel_next_task_duration_seconds_bucket"]}


def events_cpu(url: str) -> dict[str, float]:
    """The server's kubelabel_events_cpu_seconds_total by stage (fan_out, claim, settle, send)."""
    return {labels["stage"]: v for labels, v in scrape(url)["kubelabel_events_cpu_seconds_total"]}


def histogram_quantile(before: dict[float, float], after: dict[float, float], q: float) -> str:
    """The bucket bound under which a fraction q of the observations fell (Prometheus-style, no interpolation)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0) for b in bounds]
    total = counts[-1] if counts else 0
    for bound, count in zip(bounds, counts, strict=True):
        if total and count >= q * total:
            return "> 2.5 s" if bound == float("inf") else f"<= {bound * 1000:g} ms"
    return "n/a"


def check(backend: str, dsn: str, overlap: int) -> str:
    over = "SELECT count(*) FROM (SELECT task_id FROM annotations GROUP BY task_id HAVING count(*) > %s) x"
    twice = "SELECT count(*) FROM (SELECT 1 FROM annotations GROUP BY task_id, completed_by_id HAVING count(*) > 1) x"
    if backend == "postgres":
        with psycopg.connect(dsn) as conn:
            n_over = conn.execute(over, (overlap,)).fetchone()[0]
            n_twice = conn.execute(twice).fetchone()[0]
            total = conn.execute("SELECT count(*) FROM annotations").fetchone()[0]
    else:
        with sqlite3.connect(dsn) as conn:
            n_over = conn.execute(over.replace("%s", "?"), (overlap,)).fetchone()[0]
            n_twice = conn.execute(twice).fetchone()[0]
            total = conn.execute("SELECT count(*) FROM annotations").fetchone()[0]
    status = "ok" if n_over == 0 and n_twice == 0 else "VIOLATED"
    return f"{total} annotations stored; tasks over overlap: {n_over}; annotator twice on a task: {n_twice} -> {status}"


def yardstick() -> float:
    """CPU seconds for a fixed piece of pure-Python work: how fast this machine is right now.

    Machines of the same kind differ from day to day by more than most changes measured here
    (30-40% seen); runs are comparable only next to this figure.
    """
    started = time.process_time()
    total = 0
    for i in range(3_000_000):
        total += i % 7
    return time.process_time() - started


def subscribe(server: Server, pid: int, args: argparse.Namespace) -> Subscribers:
    """The receivers' process, one webhook per receiver, and the export storage (when asked)."""
    subs = Subscribers(args.webhooks, args.broken, args.export_storage)
    admin = httpx.Client(base_url=server.url, headers={"Authorization": f"Token {TOKEN}"}, timeout=60)
    for url in subs.urls:
        r = admin.post(
            "/api/webhooks/",
            json={"project": pid, "url": url, "send_for_all_actions": False, "actions": ["ANNOTATION_CREATED"]},
        )
        r.raise_for_status()
    if subs.s3_endpoint:
        import boto3

        s3 = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench", "region_name": "us-east-1"}
        boto3.client("s3", endpoint_url=subs.s3_endpoint, **s3).create_bucket(Bucket="bench-export")
        r = admin.post(
            "/api/storages/export/s3",
            json={"project": pid, "bucket": "bench-export", "prefix": "out", "s3_endpoint": subs.s3_endpoint, **s3},
        )
        r.raise_for_status()
    admin.close()
    return subs


def stored_annotations(backend: str, dsn: str) -> tuple[int, int]:
    """(annotations, annotated tasks) in the database."""
    sql = "SELECT count(*), count(DISTINCT task_id) FROM annotations"
    if backend == "postgres":
        with psycopg.connect(dsn) as conn:
            return tuple(conn.execute(sql).fetchone())  # type: ignore[return-value]
    with sqlite3.connect(dsn) as conn:
        return tuple(conn.execute(sql).fetchone())  # type: ignore[return-value]


def deliveries_not_failed(backend: str, dsn: str) -> int:
    """Deliveries written and not failed, from the database: with job workers, they write and fail
    deliveries too, and the API's metrics count only its own."""
    sql = "SELECT count(*) FROM webhook_deliveries WHERE status <> 'failed'"
    if backend == "postgres":
        with psycopg.connect(dsn) as conn:
            return int(conn.execute(sql).fetchone()[0])  # type: ignore[index]
    with sqlite3.connect(dsn) as conn:
        return int(conn.execute(sql).fetchone()[0])


def bucket_objects(endpoint: str) -> int:
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="b", aws_secret_access_key="b", region_name="us-east-1"
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="bench-export", Prefix="out/")
    return sum(page.get("KeyCount", 0) for page in pages)


def backlog(url: str) -> dict[str, float]:
    """The server's event outbox, pending deliveries and deliveries written (its metrics)."""
    metrics = scrape(url)
    written = metrics["kubelabel_webhook_deliveries_written_total"]
    found = {
        "kubelabel_events_outbox": sum(v for _, v in metrics["kubelabel_events_outbox"]),
        "pending": sum(v for labels, v in metrics["kubelabel_webhook_backlog"] if labels.get("state") == "pending"),
    }
    found |= {f"written by {labels['path']}": v for labels, v in written}
    return found


def report_deliveries(
    subs: Subscribers, backend: str, server: Server, measured_from: float, ended: float, args: argparse.Namespace
) -> None:
    """Wait for the healthy receivers to have every annotation (up to --drain seconds), then print the lags."""
    waiting = backlog(server.url)
    total, tasks = stored_annotations(backend, server.dsn)
    paths = ", ".join(f"{k.split()[-1]} {v:.0f}" for k, v in sorted(waiting.items()) if k.startswith("written by"))
    print(
        f"  at the load's end: {waiting['kubelabel_events_outbox']:.0f} events not fanned out,"
        f" {waiting['pending']:.0f} deliveries pending; deliveries written by: {paths or 'none yet'}"
    )
    deadline = time.time() + args.drain
    while time.time() < deadline and args.webhooks:
        if args.alternate:
            # Only what was annotated while they were on, what was written for them, less what failed
            # for being switched off while claimed ("the webhook was deactivated").
            now = backlog(server.url)
            total = round(deliveries_not_failed(backend, server.dsn) / args.webhooks)
            if now["kubelabel_events_outbox"] or now["pending"]:
                time.sleep(0.1)
                continue
        if min(subs.counts()[: args.webhooks]) >= total:
            break
        time.sleep(0.1)
    if subs.s3_endpoint:
        while time.time() < deadline and bucket_objects(subs.s3_endpoint) < tasks:
            time.sleep(0.5)
        objects = bucket_objects(subs.s3_endpoint)
        after = time.time() - ended
        print(f"  export storage: {objects} objects for {tasks} annotated tasks, {after:.1f} s after the load")
    records = subs.stop()
    for i, got in enumerate(records):
        during = [arrived - created for arrived, created, _ in got if measured_from <= created <= ended]
        last = max((arrived for arrived, _, _ in got), default=float("nan"))
        unique = len({d for _, _, d in got})
        print(
            f"  webhook {i + 1}: {unique} of {total} annotations delivered ({len(got) - unique} sent twice);"
            f" lag during the load p50 {percentile(during, 0.5):.2f} s, p99 {percentile(during, 0.99):.2f} s;"
            f" last arrival {last - ended:.2f} s after the load ended"
        )


@dataclass
class Part:
    """A stretch of an alternating load (--alternate): the webhooks on or off, measured after SETTLE seconds."""

    active: bool
    start: float
    end: float
    cpu: dict[str, float]  # used meanwhile: CPU seconds by whom (CPU_OF, MAIN_THREADS), MAIN_WAITS, MAIN_PREEMPTED
    submitted: int = 0

    @property
    def rate(self) -> float:
        return self.submitted / (self.end - self.start)


# Each part is measured after this much of it: what the webhooks had still to send when switched
# off goes out meanwhile (delivery lag p99 is under a second).
SETTLE = 1.0


# Whose CPU a part counts: the server, the database's backends, this client (the annotators), the
# receivers' process, and PostgreSQL's own processes (WAL writer, checkpointer, autovacuum).
CPU_OF = ("server", "database", "client", "receivers", "postgres background")
# Of the server's: its main threads' (requests), the rest being its event and sending threads.
MAIN_THREADS = "server main threads"
# ... and how often they blocked, and how often the kernel took their core away (counts, not CPU).
MAIN_WAITS, MAIN_PREEMPTED = "server main threads' waits", "server main threads' preemptions"


def cpu_used(meter: CpuMeter, receivers: psutil.Process) -> dict[str, float]:
    server, database = meter.sample()
    used = (server, database, sum(os.times()[:2]), sum(receivers.cpu_times()[:2]), meter.background_total)
    main = meter.main_threads()
    return {
        **dict(zip(CPU_OF, used, strict=True)),
        MAIN_THREADS: main.cpu,
        MAIN_WAITS: main.waits,
        MAIN_PREEMPTED: main.preempted,
    }


def alternate(
    server: Server, pid: int, meter: CpuMeter, receivers: psutil.Process, started: float, args: argparse.Namespace
) -> list[Part]:
    """Switch the project's webhooks off and on every --alternate seconds of the measured load."""
    admin = httpx.Client(base_url=server.url, headers={"Authorization": f"Token {TOKEN}"}, timeout=60)
    hooks = [h["id"] for h in admin.get("/api/webhooks/", params={"project": pid}).json()]
    parts, active, boundary, end = [], True, started, started + args.seconds
    while boundary < end - SETTLE:
        following = min(boundary + args.alternate, end)
        time.sleep(max(0.0, boundary + SETTLE - time.perf_counter()))
        cpu, measured_from = cpu_used(meter, receivers), time.perf_counter()
        time.sleep(max(0.0, following - time.perf_counter()))
        after = cpu_used(meter, receivers)
        parts.append(Part(active, measured_from, time.perf_counter(), {k: after[k] - cpu[k] for k in after}))
        active = not active
        for hook in hooks if following < end else []:
            admin.patch(f"/api/webhooks/{hook}/", json={"is_active": active}).raise_for_status()
        boundary = following
    for hook in hooks if not active else []:  # on again: what waits for them is sent after the load
        admin.patch(f"/api/webhooks/{hook}/", json={"is_active": True}).raise_for_status()
    admin.close()
    return parts


def report_parts(parts: list[Part], submitted_at: list[float], every: float, one_process: bool) -> float:
    """Rates and CPU per annotation with the webhooks on and off; returns the ratio of the rates."""
    submitted_at = sorted(submitted_at)
    for part in parts:
        part.submitted = bisect.bisect_left(submitted_at, part.end) - bisect.bisect_left(submitted_at, part.start)
    on, off = [p for p in parts if p.active], [p for p in parts if not p.active]

    def rate(of: list[Part]) -> float:
        return sum(p.submitted for p in of) / sum(p.end - p.start for p in of)

    def per_annotation(of: list[Part], keys: tuple[str, ...]) -> float:
        return sum(p.cpu[k] for p in of for k in keys) / max(sum(p.submitted for p in of), 1)

    def cpu_ms(of: list[Part], who: tuple[str, ...] = CPU_OF) -> float:
        return per_annotation(of, who) * 1000

    # Each part with the webhooks on against the parts beside it: the machine's drift cancels.
    local = sorted(
        p.rate / statistics.mean(n.rate for n in near)
        for i, p in enumerate(parts)
        if p.active and (near := [parts[j] for j in (i - 1, i + 1) if 0 <= j < len(parts) and not parts[j].active])
    )
    ratio = rate(on) / rate(off)
    print(
        f"  alternating every {every:g} s, each part measured after its first"
        f" {SETTLE:g} s: webhooks on {rate(on):.0f} annotations/s ({len(on)} parts), off {rate(off):.0f}/s"
        f" ({len(off)} parts) = {ratio:.0%}; each on part against its neighbours: median"
        f" {statistics.median(local):.0%} (from {local[0]:.0%} to {local[-1]:.0%}); CPU per annotation, all"
        f" of the machine's that the load uses, on {cpu_ms(on):.2f} ms, off {cpu_ms(off):.2f} ms"
    )
    print(
        "    of which, on / off: " + ", ".join(f"{k} {cpu_ms(on, (k,)):.2f} / {cpu_ms(off, (k,)):.2f}" for k in CPU_OF)
    )
    main = f"{cpu_ms(on, (MAIN_THREADS,)):.2f} / {cpu_ms(off, (MAIN_THREADS,)):.2f}"
    waits = f"{per_annotation(on, (MAIN_WAITS,)):.2f} / {per_annotation(off, (MAIN_WAITS,)):.2f}"
    preempted = f"{per_annotation(on, (MAIN_PREEMPTED,)):.2f} / {per_annotation(off, (MAIN_PREEMPTED,)):.2f}"
    print(
        f"    of the server's, its main threads (requests) on / off: {main} ms; per annotation they waited"
        f" {waits} times (for the interpreter, a lock, I/O) and lost their core {preempted} times"
    )
    if one_process:
        # The events run in the server's one interpreter beside its requests: the rate follows the
        # server's CPU per annotation, so this ratio is about the rate the server can keep.
        bound = cpu_ms(off, ("server",)) / cpu_ms(on, ("server",))
        print(f"    the server's CPU per annotation off / on: {bound:.0%}")
    return ratio


def run(backend: str, args: argparse.Namespace, subscribers: bool = False) -> tuple[float, float | None]:
    """One load on a fresh server: annotations/s, and with --alternate the ratio of on to off."""
    env = {"KUBELABEL_WORKERS": str(args.workers), "KUBELABEL_EGRESS_ALLOW": EGRESS}
    server = Server(backend, env=env, switch_interval=args.switch_interval, job_workers=args.job_workers).start()
    subs: Subscribers | None = None
    try:
        pace = f"paced to {args.rate:g} annotations/s in all" if args.rate else "each as fast as it can"
        listening = []
        if subscribers and args.webhooks:
            listening.append(f"{args.webhooks} webhook(s)")
        if subscribers and args.broken:
            listening.append(f"one webhook answering {args.broken}")
        if subscribers and args.export_storage:
            listening.append("an export storage")
        print(
            f"{backend}: {args.tasks} tasks, {args.annotators} annotators ({pace}), overlap {args.overlap},"
            f" {args.sampling}, {args.workers} server process(es), {args.job_workers} job worker(s);"
            f" subscribers: {', '.join(listening) or 'none'}"
        )
        speed_before = yardstick()
        pid, tokens = setup(server, backend, args)
        if listening:
            subs = subscribe(server, pid, args)
        stop, lock, tally = threading.Event(), threading.Lock(), Tally()
        # Paced (--rate): annotator i starts i/N of a period after the first, so requests spread out.
        period = args.annotators / args.rate if args.rate else 0.0
        paces = [Pace(0.0, period) for _ in tokens]
        threads = [
            threading.Thread(target=annotator, args=(server.port, t, pid, stop, tally, lock, pace))
            for t, pace in zip(tokens, paces, strict=True)
        ]
        meter = CpuMeter(server)
        # This client is the instrument: its own garbage collector's pauses are not the server's latency.
        gc.collect()
        gc.freeze()
        first = time.perf_counter() + 0.05
        for i, (t, pace) in enumerate(zip(threads, paces, strict=True)):
            pace.start = first + i * period / len(threads)
            t.start()
        # The warm-up (connections opened, functions compiled, caches filled) is not measured.
        time.sleep(args.warmup)
        for proc in meter.processes:
            proc.cpu_percent(None)
        (server_before, db_before), client_before = meter.sample(), sum(os.times()[:2])
        workers_before = meter.job_workers()
        hist_before = next_histogram(server.url)
        events_before = events_cpu(server.url)
        started = tally.measure_from = time.perf_counter()
        parts = (
            alternate(server, pid, meter, subs.process, started, args) if subs is not None and args.alternate else []
        )
        if not parts:
            time.sleep(args.seconds)
        stop.set()
        for t in threads:
            t.join()
        ended_wall = time.time()
        elapsed = time.perf_counter() - started
        cpu = sum(p.cpu_percent(None) for p in meter.processes)
        (server_after, db_after), client_after = meter.sample(), sum(os.times()[:2])
        workers_ms = (meter.job_workers() - workers_before) * 1000 / max(tally.submitted, 1)
        per = 1000 / max(tally.submitted, 1)
        cpu_ms, db_ms = (server_after - server_before) * per, (db_after - db_before) * per
        client_ms = (client_after - client_before) * per
        p50, p90, p99 = (percentile(tally.next_ms, q) for q in (0.5, 0.9, 0.99))
        print(
            f"  next-task latency ms: p50 {p50:.1f}  p90 {p90:.1f}  p99 {p99:.1f}"
            f"  max {max(tally.next_ms, default=float('nan')):.1f}  ({len(tally.next_ms)} calls)"
        )
        print(
            f"  submit latency ms:    p50 {percentile(tally.submit_ms, 0.5):.1f}"
            f"  p99 {percentile(tally.submit_ms, 0.99):.1f}"
        )
        hist_after = next_histogram(server.url)
        h50, h99 = (histogram_quantile(hist_before, hist_after, q) for q in (0.5, 0.99))
        print(f"  next-task handling in the server (kubelabel_next_task_duration_seconds): p50 {h50}, p99 {h99}")
        rate = tally.submitted / elapsed
        print(f"  submitted {tally.submitted} annotations in {elapsed:.1f} s = {rate:.0f} annotations/s")
        print(
            f"  server: {cpu:.0f}% of one core, {cpu_ms:.1f} ms CPU per annotation (next + submit);"
            f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
            + (f"; the job workers' share {workers_ms:.1f} ms" if server.workers else "")
        )
        print(f"  CPU per annotation elsewhere: database {db_ms:.1f} ms, this client {client_ms:.1f} ms")
        spent = {k: (v - events_before.get(k, 0.0)) * per for k, v in events_cpu(server.url).items()}
        if any(spent.values()):
            stages = ", ".join(f"{k} {v:.2f}" for k, v in sorted(spent.items()))
            print(f"  events in the server: {sum(spent.values()):.2f} ms CPU per annotation ({stages})")
        if tally.next_ms:
            print(f"  mean next {statistics.mean(tally.next_ms):.1f} ms")
        print(f"  {check(backend, server.dsn, args.overlap)}")
        print(
            f"  machine yardstick (CPU seconds for a fixed Python loop, lower is faster): {speed_before:.2f} before,"
            f" {yardstick():.2f} after"
        )
        for err in tally.errors[:5]:
            print(f"  ERROR {err}")
        one_process = args.workers == 1 and not args.job_workers
        ratio = report_parts(parts, tally.submitted_at, args.alternate, one_process) if parts else None
        if subs is not None:
            report_deliveries(subs, backend, server, ended_wall - elapsed, ended_wall, args)
            subs = None
        return rate, ratio
    finally:
        if subs is not None:
            subs.stop()
        server.stop()


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """The load's shape, shared with bench/workflow_database.py."""
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--overlap", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20, help="measured time, after the warm-up")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of load before measuring")
    parser.add_argument(
        "--sampling",
        default="Sequential sampling",
        choices=["Sequential sampling", "Uniform sampling", "Uncertainty sampling"],
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="pace the annotators to this many annotations/s in all (default: each as fast as it can)",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["postgres", "sqlite"], choices=["postgres", "sqlite"])
    add_load_arguments(parser)
    parser.add_argument("--workers", type=int, default=1, help="server processes (KUBELABEL_WORKERS)")
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=0,
        help="run the server with this sys.setswitchinterval (seconds; default: Python's 0.005)",
    )
    parser.add_argument(
        "--job-workers", type=int, default=0, help="`kubelabel worker` processes beside the server (through Redis)"
    )
    parser.add_argument("--webhooks", type=int, default=0, help="webhooks on ANNOTATION_CREATED to local receivers")
    parser.add_argument("--broken", choices=["500", "timeout"], help="one more webhook, to an endpoint that fails so")
    parser.add_argument("--export-storage", action="store_true", help="an export storage (S3 emulator bucket)")
    parser.add_argument("--drain", type=float, default=60, help="seconds to wait for deliveries after the load")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="with subscribers: run the pair (without, with) this many times, every other one the other way round",
    )
    parser.add_argument(
        "--alternate",
        type=float,
        default=0,
        help="with --webhooks: one run, switching them off and on every this many seconds (the ratio of the parts)",
    )
    args = parser.parse_args()
    if args.alternate and (not args.webhooks or args.broken or args.export_storage):
        parser.error("--alternate switches healthy webhooks (--webhooks N) alone")
    for backend in args.backends:
        if args.alternate:
            ratios = sorted(cast(float, run(backend, args, subscribers=True)[1]) for _ in range(args.repeat))
            print(f"{backend}: webhooks on / off {', '.join(f'{r:.0%}' for r in ratios)}")
            continue
        if not (args.webhooks or args.broken or args.export_storage):
            run(backend, args)
            continue
        pairs = []
        for i in range(args.repeat):
            # Every other pair runs the other way round: a machine that speeds up or slows down over
            # the series then favours neither side.
            if i % 2:
                listened, _ = run(backend, args, subscribers=True)
                alone, _ = run(backend, args)
            else:
                alone, _ = run(backend, args)
                listened, _ = run(backend, args, subscribers=True)
            pairs.append((alone, listened))
            print(
                f"{backend}: with subscribers {listened:.0f} annotations/s, without {alone:.0f}: {listened / alone:.0%}"
            )
        if len(pairs) > 1:
            # The machine's speed moves between runs: the median pair's ratio, and the spread.
            ratios = sorted(listened / alone for alone, listened in pairs)
            print(
                f"{backend}: {len(pairs)} pairs, ratio median {statistics.median(ratios):.0%}"
                f" (from {ratios[0]:.0%} to {ratios[-1]:.0%}); without median"
                f" {statistics.median(a for a, _ in pairs):.0f}/s, with {statistics.median(w for _, w in pairs):.0f}/s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
