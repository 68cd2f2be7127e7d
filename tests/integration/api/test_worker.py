"""`kubelabel worker` as a process: polls the table (Redis down), delivers, stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.conftest import BACKENDS
from tests.integration.api.test_redis import ROOT, UNREACHABLE_REDIS, run_worker, worker_env
from tests.integration.api.test_webhooks import SECRET, make_hook, wait_delivery
from tests.support.webhook_receiver import WebhookReceiver


@pytest.mark.parametrize("backend", BACKENDS)
def test_worker_polls_without_redis_and_stops_on_sigterm(backend, server_pool):
    # The API runs no jobs itself here, so only the worker process can deliver.
    server = server_pool.new(backend, KUBELABEL_INPROCESS_JOBS="never")
    env = worker_env(server, REDIS_URL=UNREACHABLE_REDIS, KUBELABEL_JOB_POLL_INTERVAL="0.1")
    worker = subprocess.Popen(
        [sys.executable, "-m", "kubelabel_cli", "worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with server.client() as api, WebhookReceiver(secret=SECRET) as receiver:
            pid = api.post("/api/projects/", json={"title": "worker"}).json()["id"]
            hook = make_hook(api, pid, receiver.url, secret=SECRET)
            api.patch(f"/api/projects/{pid}/", json={"title": "a"})
            api.patch(f"/api/projects/{pid}/", json={"title": "b"})
            received = receiver.wait_for(2)
            assert all(r.signature_ok for r in received)
            wait_delivery(api, hook["id"], "delivered")
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        server.stop()
    assert worker.returncode == 0, stderr
    assert "SIGTERM" in stderr and "worker stopped" in stderr
    assert stderr.count("is unreachable") == 1  # warned once, then polled


def test_burst_with_an_empty_queue_exits_at_once(server_pool):
    server = server_pool.new("sqlite", KUBELABEL_INPROCESS_JOBS="never")
    try:
        done = run_worker(["--burst"], worker_env(server))
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    assert "burst done: 0 job(s) run" in done.stderr
