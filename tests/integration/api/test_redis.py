"""Redis as the job queue's wake-up channel: workers with real Redis, and life without it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from api_server.db.models import EventOutbox
from tests.conftest import BACKENDS
from tests.integration.api.test_webhooks import SECRET, make_hook, wait_delivery
from tests.support.apiserver import TEST_EGRESS_ALLOW
from tests.support.services import REDIS_URL
from tests.support.waiting import wait_until
from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[3]
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def worker_env(server, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBELABEL_") and k not in {"REDIS_URL"}}
    env.update(
        DATABASE_URL=server.database_url,
        KUBELABEL_DATA_DIR=str(server.data_dir),
        KUBELABEL_LOG_LEVEL="info",
        KUBELABEL_EGRESS_ALLOW=TEST_EGRESS_ALLOW,  # receivers and backends listen on 127.0.0.1
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def run_worker(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubelabel_cli", "worker", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_redis_unreachable_jobs_run_in_process_and_warn_once(backend, server_pool, caplog):
    caplog.set_level(logging.WARNING, logger="api_server.jobs")
    server = server_pool.new(backend, REDIS_URL=UNREACHABLE_REDIS, KUBELABEL_REDIS_PREFIX=f"t{uuid.uuid4().hex}")
    try:
        with server.client() as api, WebhookReceiver(secret=SECRET) as receiver:
            assert api.get("/api/projects/").status_code == 200  # the API keeps serving
            pid = api.post("/api/projects/", json={"title": "no redis"}).json()["id"]
            hook = make_hook(api, pid, receiver.url, secret=SECRET)
            for i in range(3):
                assert api.patch(f"/api/projects/{pid}/", json={"title": f"t{i}"}).status_code == 200
            received = receiver.wait_for(3)
            assert all(r.signature_ok for r in received)
            assert sorted(r.json()["project"]["title"] for r in received) == ["t0", "t1", "t2"]
            assert api.get(f"/api/webhooks/{hook['id']}/deliveries/").json()["count"] == 3
            wait_delivery(api, hook["id"], "delivered")
    finally:
        server.stop()
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage() and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "127.0.0.1:1" in warnings[0].getMessage()


@pytest.mark.redis
@pytest.mark.parametrize("backend", BACKENDS)
def test_with_redis_and_a_live_worker_the_worker_runs_the_jobs(backend, server_pool, redis_prefix):
    fast = {"KUBELABEL_REDIS_PREFIX": redis_prefix, "KUBELABEL_REDIS_CHECK_INTERVAL": "0.2"}
    server = server_pool.new(backend, REDIS_URL=REDIS_URL, **fast)
    runner = server.app.state.job_runner
    assert runner.active() is True  # no worker yet: the API runs jobs itself
    worker = subprocess.Popen(
        [sys.executable, "-m", "kubelabel_cli", "worker"],
        env=worker_env(server, REDIS_URL=REDIS_URL, KUBELABEL_JOB_POLL_INTERVAL="5", **fast),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: not runner.active(), "the API sees the worker")
        with server.client() as api, WebhookReceiver(secret=SECRET) as receiver:
            pid = api.post("/api/projects/", json={"title": "with redis"}).json()["id"]
            hook = make_hook(api, pid, receiver.url, secret=SECRET)
            api.patch(f"/api/projects/{pid}/", json={"title": "by the worker"})
            (got,) = receiver.wait_for(1)
            assert got.signature_ok and got.json()["project"]["title"] == "by the worker"
            assert wait_delivery(api, hook["id"], "delivered")["attempts"] == 1
            assert runner.active() is False  # so the worker delivered it

            worker.send_signal(signal.SIGTERM)
            _, stderr = worker.communicate(timeout=60)
            assert worker.returncode == 0, stderr
            wait_until(runner.active, "the API takes over from the stopped worker")
            api.patch(f"/api/projects/{pid}/", json={"title": "by the API"})
            second = receiver.wait_for(2)[1]
            assert second.json()["project"]["title"] == "by the API"
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        server.stop()


@pytest.mark.redis
@pytest.mark.parametrize("backend", BACKENDS)
def test_events_left_by_the_api_are_delivered_by_a_burst_worker(backend, server_pool, redis_prefix):
    # KUBELABEL_INPROCESS_JOBS=never: the API only enqueues, whatever it knows about workers.
    settings = {"KUBELABEL_REDIS_PREFIX": redis_prefix, "KUBELABEL_INPROCESS_JOBS": "never"}
    server = server_pool.new(backend, REDIS_URL=REDIS_URL, **settings)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        with server.client() as api, WebhookReceiver(secret=SECRET) as receiver:
            pid = api.post("/api/projects/", json={"title": "burst"}).json()["id"]
            hook = make_hook(api, pid, receiver.url, secret=SECRET)
            api.patch(f"/api/projects/{pid}/", json={"title": "queued"})
            # The API runs nothing: the event waits in the outbox, no delivery exists yet.
            assert api.get(f"/api/webhooks/{hook['id']}/deliveries/").json()["count"] == 0
            with server.session_factory() as session:
                assert session.scalar(select(func.count()).select_from(EventOutbox)) == 1

            done = run_worker(["--burst"], worker_env(server, REDIS_URL=REDIS_URL, **settings))
            assert done.returncode == 0, done.stderr
            assert "burst done" in done.stderr
            (got,) = receiver.wait_for(1)
            assert got.signature_ok and got.json()["project"]["title"] == "queued"
            assert wait_delivery(api, hook["id"], "delivered")["attempts"] == 1
    finally:
        client.close()
        server.stop()
