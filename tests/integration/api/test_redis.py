"""Redis as the job queue's wake-up channel: workers with real Redis, and life without it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from tests.conftest import BACKENDS
from tests.integration.api.test_webhooks import SECRET, make_hook, wait_delivery
from tests.support.services import REDIS_URL, require_port
from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[3]
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def worker_env(server, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBELABEL_") and k not in {"REDIS_URL"}}
    env.update(
        DATABASE_URL=server.database_url,
        KUBELABEL_DATA_DIR=str(server.data_dir),
        KUBELABEL_LOG_LEVEL="info",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def run_worker(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api_server.cli", "worker", *args],
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


@pytest.fixture
def redis_prefix():
    require_port("Redis", "127.0.0.1", 6379)
    prefix = f"kltest-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.mark.redis
@pytest.mark.parametrize("backend", BACKENDS)
def test_with_redis_the_worker_runs_the_jobs(backend, server_pool, redis_prefix):
    server = server_pool.new(backend, REDIS_URL=REDIS_URL, KUBELABEL_REDIS_PREFIX=redis_prefix)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert server.app.state.job_runner.active() is False  # the API leaves jobs to workers
        with server.client() as api, WebhookReceiver(secret=SECRET) as receiver:
            pid = api.post("/api/projects/", json={"title": "with redis"}).json()["id"]
            hook = make_hook(api, pid, receiver.url, secret=SECRET)
            api.patch(f"/api/projects/{pid}/", json={"title": "queued"})
            (pending,) = api.get(f"/api/webhooks/{hook['id']}/deliveries/").json()["results"]
            assert pending["status"] == "pending" and pending["attempts"] == 0
            assert client.llen(f"{redis_prefix}:jobs") == 1  # the id was handed to workers

            done = run_worker(["--burst"], worker_env(server, REDIS_URL=REDIS_URL, KUBELABEL_REDIS_PREFIX=redis_prefix))
            assert done.returncode == 0, done.stderr
            assert "burst done: 1 job(s) run" in done.stderr
            (got,) = receiver.wait_for(1)
            assert got.signature_ok and got.json()["project"]["title"] == "queued"
            delivery = wait_delivery(api, hook["id"], "delivered")
            assert delivery["attempts"] == 1
    finally:
        client.close()
        server.stop()
