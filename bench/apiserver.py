"""The benchmarks' API server: `kubelabel serve` on a fresh database, and the CPU it costs.

Used by bench/import_export.py and bench/workflow.py (run as scripts: this folder is on
sys.path). Each server gets its own SQLite file or PostgreSQL database, dropped on stop.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import httpx
import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.net import free_port  # noqa: E402
from tests.support.processes import stop_process  # noqa: E402

TOKEN = "bench-admin-token-0123456789"
PG_ADMIN = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0")


@dataclass
class Server:
    backend: str  # postgres | sqlite
    env: dict[str, str] = field(default_factory=dict)  # extra environment, e.g. KUBELABEL_WORKERS
    switch_interval: float = 0  # run with another sys.setswitchinterval (an experiment; no CLI option)
    job_workers: int = 0  # `kubelabel worker` processes beside it, through Redis (REDIS_URL, own key prefix)
    port: int = 0
    url: str = ""
    dsn: str = ""  # for direct SQL: the PostgreSQL DSN, or the SQLite file's path
    database: str | None = None  # PostgreSQL only
    data_dir: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> Server:
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"kl-bench-{self.backend}-"))
        if self.backend == "postgres":
            self.database = f"kl_bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.database}"')
            self.dsn = PG_ADMIN.rsplit("/", 1)[0] + "/" + self.database
            database_url = self.dsn.replace("postgresql://", "postgresql+psycopg://")
        else:
            self.dsn = str(self.data_dir / "kubelabel.db")
            database_url = f"sqlite:///{self.dsn}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "KUBELABEL_ADMIN_TOKEN": TOKEN,
            "KUBELABEL_DATA_DIR": str(self.data_dir),
            "KUBELABEL_LOG_LEVEL": "warning",
            **self.env,
        }
        env.pop("REDIS_URL", None)
        if self.job_workers:
            env["REDIS_URL"] = REDIS
            env["KUBELABEL_REDIS_PREFIX"] = f"kl-bench-{uuid.uuid4().hex[:10]}"
            env["KUBELABEL_REDIS_CHECK_INTERVAL"] = "1"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = ["serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.switch_interval:
            code = (
                f"import sys; sys.setswitchinterval({self.switch_interval}); from kubelabel_cli.main import main;"
                f" sys.argv = ['kubelabel', *{command!r}]; sys.exit(main())"
            )
            argv = [sys.executable, "-c", code]
        else:
            argv = [str(Path(sys.executable).parent / "kubelabel"), *command]
        self.process = subprocess.Popen(argv, env=env, cwd=self.data_dir)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    self._start_workers(env)
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not start")

    def _start_workers(self, env: dict[str, str]) -> None:
        kubelabel = str(Path(sys.executable).parent / "kubelabel")
        self.workers = [
            subprocess.Popen([kubelabel, "worker"], env=env, cwd=self.data_dir) for _ in range(self.job_workers)
        ]
        # The API hands events and jobs over once it sees a worker announced in Redis (its check runs every second).
        time.sleep(3)

    def processes(self) -> list[psutil.Process]:
        """The server's process and its children (`--workers`), and the job workers."""
        assert self.process is not None
        parent = psutil.Process(self.process.pid)
        return [parent, *parent.children(recursive=True), *(psutil.Process(w.pid) for w in self.workers)]

    def stop(self) -> None:
        for worker in self.workers:
            stop_process(worker, timeout=30)
        if self.process is not None:
            stop_process(self.process, timeout=30)
        if self.database:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


# A client backend's title: "postgres: <user> <database> <address> <state>".
_BACKEND = re.compile(r"^postgres: \S+ \S+ (\d+\.\d+\.\d+\.\d+|\[local\])")


class MainThreads(NamedTuple):
    cpu: float  # CPU seconds
    waits: int  # times they blocked: for the interpreter, a lock, or I/O with nothing else to do
    preempted: int  # times the kernel gave their core to another thread while they could run


def _context_switches(pid: int) -> dict[str, int]:
    """A main thread's context switch counts (Linux's /proc; none elsewhere)."""
    try:
        lines = Path(f"/proc/{pid}/task/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    fields = (line.partition(":") for line in lines)
    return {name: int(value) for name, _, value in fields if name.endswith("ctxt_switches")}


class CpuMeter:
    """CPU seconds used by the server's processes and by the PostgreSQL backends serving its database."""

    def __init__(self, server: Server) -> None:
        self.processes = server.processes()
        self.worker_pids = {w.pid for w in server.workers}
        self.database = server.database
        self.seen: dict[int, float] = {}
        self.db_total = 0.0
        self.background_total = 0.0  # the cluster's own processes: WAL writer, checkpointer, autovacuum

    def _postgres(self) -> float:
        # Backends come and go: add each live backend's CPU since it was last seen.
        if not self.database:
            return 0.0
        for proc in psutil.process_iter(["cmdline", "cpu_times"]):
            times = proc.info["cpu_times"]
            title = " ".join(proc.info["cmdline"] or [])
            if not title.startswith("postgres:") or not times:
                continue
            used = max(0.0, times.user + times.system - self.seen.get(proc.pid, 0.0))
            self.seen[proc.pid] = times.user + times.system
            # The backends serving the bench's own database (their title names it); those of other
            # databases (none while a bench runs alone) are not counted at all.
            if f" {self.database} " in title:
                self.db_total += used
            elif not _BACKEND.search(title):
                self.background_total += used
        return self.db_total

    def job_workers(self) -> float:
        """CPU seconds the job workers used so far (part of the server's)."""
        return sum(sum(p.cpu_times()[:2]) for p in self.processes if p.pid in self.worker_pids)

    def main_threads(self) -> MainThreads:
        """What the server processes' main threads (the API's event loop: requests) used and met so far."""
        cpu, waits, preempted = 0.0, 0, 0
        for p in self.processes:
            if p.pid in self.worker_pids:
                continue
            main = next((t for t in p.threads() if t.id == p.pid), None)
            cpu += main.user_time + main.system_time if main is not None else 0.0
            switches = _context_switches(p.pid)
            waits += switches.get("voluntary_ctxt_switches", 0)
            preempted += switches.get("nonvoluntary_ctxt_switches", 0)
        return MainThreads(cpu, waits, preempted)

    def sample(self) -> tuple[float, float]:
        """(server CPU seconds, database CPU seconds) used so far."""
        server = sum(sum(p.cpu_times()[:2]) for p in self.processes)
        return server, self._postgres()
