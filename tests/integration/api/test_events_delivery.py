"""Events at labeling speed: a team submitting while webhooks listen, on both databases.

Every ANNOTATION_CREATED reaches every receiver, in order per task, over a few kept-alive
connections; a server killed mid-load delivers, after its restart, exactly the committed
submissions' events; a dead endpoint backs off alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import BACKENDS, TEXT_CONFIG, reset
from tests.support.apiserver import ADMIN_TOKEN, TEST_EGRESS_ALLOW, LiveServer
from tests.support.databases import throwaway
from tests.support.labeling import choice, project_with_tasks
from tests.support.net import free_port, wait_for_port
from tests.support.waiting import wait_until
from tests.support.webhook_receiver import Received, WebhookReceiver

ROOT = Path(__file__).resolve().parents[3]
SECRET = "events-at-speed-secret-0123456789"
ANNOTATORS = 16


def hook(api: httpx.Client, pid: int, url: str, **fields: Any) -> dict[str, Any]:
    r = api.post("/api/webhooks/", json={"project": pid, "url": url, "secret": SECRET, **fields})
    assert r.status_code == 201, r.text
    return r.json()


def annotators(api: httpx.Client, base_url: str, pid: int, n: int = ANNOTATORS) -> list[httpx.Client]:
    clients = []
    for i in range(n):
        r = api.post("/api/users/", json={"username": f"ann{pid}-{i}"})
        assert r.status_code == 201, r.text
        uid = r.json()["id"]
        token = api.post(f"/api/users/{uid}/token/").json()["token"]
        r = api.post(f"/api/projects/{pid}/members/", json={"user": uid, "role": "annotator"})
        assert r.status_code == 201, r.text
        clients.append(httpx.Client(base_url=base_url, headers={"Authorization": f"Token {token}"}, timeout=30))
    return clients


def label_all(clients: list[httpx.Client], pid: int, *, updates: int = 0, stop: threading.Event | None = None) -> list:
    """Each annotator takes /next and submits (then changes its annotation `updates` times) until none is left."""
    created: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def work(client: httpx.Client) -> None:
        try:
            while stop is None or not stop.is_set():
                r = client.get(f"/api/projects/{pid}/next")
                if r.status_code == 404:
                    return
                assert r.status_code == 200, r.text
                r = client.post(f"/api/tasks/{r.json()['id']}/annotations/", json={"result": choice()})
                assert r.status_code == 201, r.text
                annotation = r.json()["id"]
                with lock:
                    created.append(annotation)
                for n in range(updates):
                    value = "Negative" if n % 2 == 0 else "Positive"
                    r = client.patch(f"/api/annotations/{annotation}/", json={"result": choice(value)})
                    assert r.status_code == 200, r.text
        except (httpx.HTTPError, AssertionError) as exc:
            if stop is None or not stop.is_set():
                with lock:
                    errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] or stop is not None, errors[:3]
    return created


def created_by_annotation(received: list[Received]) -> dict[int, set[str]]:
    """ANNOTATION_CREATED deliveries: annotation id -> the delivery ids that carried it."""
    out: dict[int, set[str]] = defaultdict(set)
    for r in received:
        if r.headers["x-kubelabel-event"] == "ANNOTATION_CREATED":
            out[r.json()["annotation"]["id"]].add(r.headers["x-kubelabel-delivery"])
    return out


def pg_submits() -> dict[str, float]:
    """kubelabel_pg_loop_calls_total of submissions, by who answered (the in-process servers' registry)."""
    from api_server.metrics import REGISTRY

    return {
        by: REGISTRY.get_sample_value("kubelabel_pg_loop_calls_total", {"call": "submit", "by": by}) or 0.0
        for by in ("database", "services")
    }


def written_by_submissions() -> float:
    """Deliveries the labeling loop's statement wrote with their submissions (the in-process servers' registry)."""
    from api_server.metrics import REGISTRY

    return REGISTRY.get_sample_value("kubelabel_webhook_deliveries_written_total", {"path": "submit"}) or 0.0


# --- a team and two receivers ------------------------------------------------------------------


def test_sixteen_annotators_and_two_receivers_get_every_annotation(api, live_server):
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 160, overlap=1)
    pid = project["id"]
    clients = annotators(api, live_server.url, pid)
    before = pg_submits()
    try:
        with WebhookReceiver(secret=SECRET) as first, WebhookReceiver(secret=SECRET) as second:
            hooks = [hook(api, pid, first.url), hook(api, pid, second.url, actions=["ANNOTATION_CREATED"])]
            created = label_all(clients, pid)
            assert len(created) == len(tasks)
            for receiver in (first, second):
                wait_until(lambda r=receiver: len(created_by_annotation(r.received)) == len(created), "all delivered")
            for receiver in (first, second):
                by_annotation = created_by_annotation(receiver.received)
                assert set(by_annotation) == set(created)
                # At least once, and without a crash exactly once: one delivery id, sent once.
                assert all(len(ids) == 1 for ids in by_annotation.values())
                ids = [r.headers["x-kubelabel-delivery"] for r in receiver.received]
                assert len(ids) == len(set(ids))
                assert all(r.signature_ok for r in receiver.received)
                # Kept-alive connections: a handful for hundreds of deliveries (idle ones expire after 5 s).
                assert receiver.connections <= 2 * live_server.app.state.settings.webhook_endpoint_concurrency
            completed = [r for r in first.received if r.headers["x-kubelabel-event"] == "TASK_COMPLETED"]
            assert len(completed) == len(tasks)  # the first webhook hears everything
            for h in hooks:  # recorded as delivered a moment after arriving
                path = f"/api/webhooks/{h['id']}/"
                wait_until(lambda path=path: api.get(path).json()["pending"] == 0, "every delivery recorded", 10)
                shown = api.get(path).json()
                assert (shown["failing"], shown["consecutive_failures"]) == (0, 0)
    finally:
        for c in clients:
            c.close()
    if live_server.backend == "postgres":
        # The submissions stayed on the database function although someone listens.
        after = pg_submits()
        assert after["services"] == before["services"]
        assert after["database"] - before["database"] >= len(tasks)


@pytest.mark.postgres
def test_submissions_the_webhooks_alone_hear_write_their_deliveries_themselves(server_pool):
    """On PostgreSQL's labeling loop: no outbox row, fan-out and delete for them (webhooks/bulk.py)."""
    server = server_pool.shared_server("postgres")
    reset(server)
    before = written_by_submissions()
    with server.client() as api, WebhookReceiver(secret=SECRET) as receiver:
        project, tasks = project_with_tasks(api, TEXT_CONFIG, 64, overlap=1)
        pid = project["id"]
        hook(api, pid, receiver.url, send_for_all_actions=False, actions=["ANNOTATION_CREATED"])
        clients = annotators(api, server.url, pid, 4)
        try:
            created = label_all(clients, pid)
        finally:
            for c in clients:
                c.close()
        wait_until(lambda: len(created_by_annotation(receiver.received)) == len(created), "all delivered")
        by_annotation = created_by_annotation(receiver.received)
        assert set(by_annotation) == set(created) and all(len(ids) == 1 for ids in by_annotation.values())
        full = receiver.received[-1].json()
        assert full["project"]["id"] == pid and full["task"]["id"] in set(tasks)
    # The first submission went through the outbox (no project form was made yet), most after it not.
    assert written_by_submissions() - before >= len(tasks) // 2


def test_each_tasks_deliveries_arrive_in_order(api, live_server):
    """ANNOTATION_UPDATED never arrives before its ANNOTATION_CREATED, nor before an earlier update."""
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 48, overlap=1)
    pid = project["id"]
    clients = annotators(api, live_server.url, pid, 8)
    try:
        # A receiver that answers a little late, so that many deliveries are in flight at once.
        with WebhookReceiver(secret=SECRET, delay=0.01) as receiver:
            hook(
                api, pid, receiver.url, send_for_all_actions=False, actions=["ANNOTATION_CREATED", "ANNOTATION_UPDATED"]
            )
            created = label_all(clients, pid, updates=2)
            wait_until(lambda: len(receiver.received) == 3 * len(created), "every event delivered")
    finally:
        for c in clients:
            c.close()
    seen: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for r in sorted(receiver.received, key=lambda r: r.at):
        body = r.json()
        seen[body["annotation"]["id"]].append((body["action"], body["annotation"]["updated_at"]))
    assert set(seen) == set(created)
    for annotation, arrivals in seen.items():
        actions = [a for a, _ in arrivals]
        assert actions == ["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_UPDATED"], (annotation, arrivals)


# --- a dead endpoint -----------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backoff_server(request: pytest.FixtureRequest, server_pool) -> LiveServer:
    """Backoff from half a second; each webhook call times out after one."""
    key = f"backoff-{request.param}"
    if key not in server_pool.shared:
        server_pool.shared[key] = server_pool.new(
            request.param,
            KUBELABEL_JOB_BACKOFF_BASE=0.5,
            KUBELABEL_JOB_BACKOFF_MAX=30,
            KUBELABEL_WEBHOOK_TIMEOUT=1,
        )
    return server_pool.shared[key]


@pytest.mark.parametrize("dead", ["500", "timeout"])
def test_a_dead_endpoint_backs_off_while_the_other_keeps_its_pace(backoff_server, dead):
    with backoff_server.client() as api:
        project, tasks = project_with_tasks(api, TEXT_CONFIG, 96, overlap=1)
        pid = project["id"]
        clients = annotators(api, backoff_server.url, pid, 8)
        broken = WebhookReceiver(fail_first=10**9, fail_status=500) if dead == "500" else WebhookReceiver(delay=3.0)
        try:
            with WebhookReceiver(secret=SECRET) as healthy, broken:
                dead_hook = hook(api, pid, broken.url, actions=["ANNOTATION_CREATED"], send_for_all_actions=False)
                good_hook = hook(api, pid, healthy.url, actions=["ANNOTATION_CREATED"], send_for_all_actions=False)
                started = time.time()
                created = label_all(clients, pid)
                ended = time.time()
                wait_until(lambda: len(healthy.received) >= len(created), "the healthy endpoint has everything", 30)
                # Its pace: everything soon after the load's end, while the dead one still holds its whole
                # backlog (lags themselves are measured by bench/workflow.py: this process also runs the
                # server and the annotators, and their GIL decides them as much as the engine does).
                assert max(r.at for r in healthy.received) - ended < 10
                state = lambda h: api.get(f"/api/webhooks/{h['id']}/").json()  # noqa: E731
                wait_until(lambda: state(good_hook)["pending"] == 0, "the healthy endpoint's deliveries recorded", 10)
                # A load done within the dead endpoint's first timeout (1 s) leaves no failure recorded yet.
                wait_until(lambda: state(dead_hook)["failing"] >= 1, "the dead endpoint's first failure recorded", 10)
                dead_state, good_state = state(dead_hook), state(good_hook)
        finally:
            for c in clients:
                c.close()
    assert (good_state["pending"], good_state["consecutive_failures"]) == (0, 0)
    # The dead one backs off: its backlog is visible, and it was tried far less often than there were events.
    assert dead_state["pending"] == len(created) and dead_state["failing"] >= 1
    assert dead_state["consecutive_failures"] >= 1 and dead_state["backoff_until"] is not None
    assert len(broken.received) < len(created) / 2, (len(broken.received), len(created), ended - started)
    metrics = api_metrics(backoff_server)
    assert f'kubelabel_webhook_backlog{{state="pending",webhook="{dead_hook["id"]}"}}' in metrics
    assert f'kubelabel_webhook_lag_seconds{{webhook="{dead_hook["id"]}"}}' in metrics


def api_metrics(server: LiveServer) -> str:
    with server.client() as api:
        return api.get("/metrics").text


# --- a server killed mid-load ----------------------------------------------------------------------


def serve(database_url: str, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBELABEL_") and k != "REDIS_URL"}
    env.update(
        DATABASE_URL=database_url,
        KUBELABEL_DATA_DIR=str(data_dir),
        KUBELABEL_ADMIN_TOKEN=ADMIN_TOKEN,
        KUBELABEL_EGRESS_ALLOW=TEST_EGRESS_ALLOW,
        KUBELABEL_LOG_LEVEL="warning",
        # Claims the killed server held are sent again after their lease (3 x this, at least 30 s).
        # Not shorter: this process's annotators and receiver share one interpreter, and on a loaded
        # machine an answer may take seconds.
        KUBELABEL_WEBHOOK_TIMEOUT="5",
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubelabel_cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, timeout=60)
    return proc


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_server_killed_mid_load_delivers_exactly_the_committed_submissions(backend, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with throwaway(backend, tmp_path, "kl_kill") as url, WebhookReceiver(secret=SECRET) as receiver:
        proc = serve(url, tmp_path, port)
        try:
            with httpx.Client(base_url=base, headers={"Authorization": f"Token {ADMIN_TOKEN}"}, timeout=30) as api:
                project, _ = project_with_tasks(api, TEXT_CONFIG, 2000, overlap=1)
                pid = project["id"]
                hook(api, pid, receiver.url, actions=["ANNOTATION_CREATED"], send_for_all_actions=False)
                clients = annotators(api, base, pid)
            stop = threading.Event()
            load = threading.Thread(target=label_all, args=(clients, pid), kwargs={"stop": stop})
            load.start()
            wait_until(lambda: len(receiver.received) >= 50, "deliveries flow", 30)
            proc.send_signal(signal.SIGKILL)  # mid-load: requests in flight, events not yet fanned out or sent
            proc.wait()
            stop.set()
            load.join()
            for c in clients:
                c.close()
            proc = serve(url, tmp_path, port)
            engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
            try:
                with engine.connect() as conn:
                    committed = {int(i) for (i,) in conn.execute(text("SELECT id FROM annotations"))}
            finally:
                engine.dispose()
            wait_until(lambda: set(created_by_annotation(receiver.received)) >= committed, "all delivered", 90)
            time.sleep(1)  # nothing more arrives
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    by_annotation = created_by_annotation(receiver.received)
    assert set(by_annotation) == committed  # every committed submission, nothing else
    assert len(committed) > 50
    # A delivery sent twice (the kill came between sending and recording it) keeps its id.
    assert all(len(ids) == 1 for ids in by_annotation.values())


# --- workers share the deliveries -------------------------------------------------------------------


@pytest.mark.postgres
def test_workers_share_the_deliveries_and_none_is_sent_twice(server_pool):
    """Three `kubelabel worker`s (REDIS_URL set) and an API that runs no jobs: concurrent claims never
    send one delivery twice, and the deliveries spread over the workers."""
    from tests.integration.api.test_redis import worker_env
    from tests.support.services import REDIS_URL, require_port

    require_port("Redis", "127.0.0.1", 6379)
    prefix = f"t{os.urandom(6).hex()}"
    server = server_pool.new(
        "postgres", KUBELABEL_INPROCESS_JOBS="never", REDIS_URL=REDIS_URL, KUBELABEL_REDIS_PREFIX=prefix
    )
    env = worker_env(server, REDIS_URL=REDIS_URL, KUBELABEL_REDIS_PREFIX=prefix, KUBELABEL_LOG_LEVEL="warning")
    workers = [
        subprocess.Popen([sys.executable, "-m", "kubelabel_cli", "worker"], env=env, cwd=ROOT, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    try:
        with server.client() as api, WebhookReceiver(secret=SECRET) as receiver:
            project, tasks = project_with_tasks(api, TEXT_CONFIG, 400, overlap=1)
            pid = project["id"]
            hook(api, pid, receiver.url, actions=["ANNOTATION_CREATED"], send_for_all_actions=False)
            clients = annotators(api, server.url, pid)
            created = label_all(clients, pid)
            for c in clients:
                c.close()
            assert len(created) == len(tasks)
            wait_until(lambda: len(created_by_annotation(receiver.received)) == len(created), "all delivered", 60)
            time.sleep(1)  # nothing more arrives
            # Which worker holds each connection the receiver saw (kept alive for 30 s when idle).
            receiver_port = int(receiver.url.split(":")[2].split("/")[0])
            senders: dict[int, int] = {}
            for n, worker in enumerate(workers):
                for conn in psutil.Process(worker.pid).net_connections(kind="tcp"):
                    if conn.raddr and conn.raddr.port == receiver_port:
                        senders[conn.laddr.port] = n
        by_annotation = created_by_annotation(receiver.received)
        assert set(by_annotation) == set(created)
        assert all(len(ids) == 1 for ids in by_annotation.values())  # one delivery each...
        assert len(receiver.received) == len(created)  # ...sent once
        carried = defaultdict(int)
        for r in receiver.received:
            carried[senders.get(r.connection, -1)] += 1
        assert len([n for n in carried if n >= 0]) >= 2, carried  # more than one worker sent
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
