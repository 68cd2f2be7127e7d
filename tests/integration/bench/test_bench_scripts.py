"""The benchmarks still run against the code they measure, briefly, and their own checks hold.

Their figures are read by hand (docs/workflow.md); nothing here looks at a rate or a time. What
broke before unnoticed: migration 0013 changed the submission statement, and
bench/workflow_database.py's pgbench script stopped running until someone next ran it by hand.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import require_port, unavailable

BENCH = Path(__file__).resolve().parents[3] / "bench"


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=300, cwd=BENCH.parent
    )
    if "pgbench not found" in done.stderr:
        unavailable("pgbench not found (PostgreSQL's client tools)")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def count(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not in:\n{text}"
    return int(found[1])


@pytest.mark.postgres
def test_the_database_bench_writes_each_submissions_deliveries_with_it():
    """pgbench sends the API's statements with the project's payload form: every delivery is written
    by its submission's statement and received once."""
    require_port("PostgreSQL", "127.0.0.1", 5432)
    out = run("workflow_database.py", "--tasks", "10000", "--seconds", "2", "--warmup", "1", "--webhooks", "1")
    stored = count(r"(\d+) annotations stored; tasks over overlap: 0; annotator twice on a task: 0 -> ok", out)
    assert count(r"deliveries received, per webhook: \[(\d+)\]", out) == stored > 0
    assert count(r"written with their submission (\d+)", out) == stored
    assert count(r"by the fan-out (\d+)", out) == 0


def test_the_workflow_bench_alternates_a_webhook_on_sqlite():
    """Switched off and on under load: each annotation made while it was on arrives once."""
    out = run(
        "workflow.py",
        *("--backends", "sqlite", "--tasks", "3000", "--seconds", "6", "--warmup", "1"),
        *("--webhooks", "1", "--alternate", "2", "--drain", "20"),
    )
    assert re.search(r"tasks over overlap: 0; annotator twice on a task: 0 -> ok", out), out
    assert "webhooks on" in out and "of which, on / off: server" in out
    waits = re.search(r"per annotation they waited (\d+\.\d+) / (\d+\.\d+) times", out)
    assert waits is not None, out
    if Path("/proc/self/status").exists():  # Linux: the request threads' context switches were read
        assert float(waits[1]) > 0 and float(waits[2]) > 0, out
    assert re.search(r"the server's CPU per annotation off / on: \d+%", out), out
    delivered = re.search(r"webhook 1: (\d+) of (\d+) annotations delivered \((\d+) sent twice\)", out)
    assert delivered is not None, out
    assert int(delivered[1]) == int(delivered[2]) > 0 and int(delivered[3]) == 0
