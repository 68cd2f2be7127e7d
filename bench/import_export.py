"""Import/export throughput of the API server over HTTP, on SQLite and PostgreSQL (run by hand).

Starts `kubelabel serve` as a subprocess per backend (fresh SQLite file / fresh PostgreSQL
database), imports N text tasks as JSON lists of 100,000 per request and as one streamed
JSONL upload, exports them as JSON and CSV (streamed, counting bytes and tasks), and
prints tasks/s and the server's RSS (sampled every 20 ms with psutil).

    .venv/bin/python bench/import_export.py                       # 100k and 1M, both databases
    .venv/bin/python bench/import_export.py --sizes 100000 --backends sqlite

Targets (2 cores): 1M tasks imported in <= 30 s, export >= 100k tasks/s, RSS growth <= 200 MB.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import psutil
from apiserver import TOKEN, CpuMeter, Server

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/></Choices>
</View>"""
PER_REQUEST = 100_000


def text_of(i: int) -> str:
    return f"Task {i}: the quick brown fox jumps over the lazy dog, review number {i * 7919 % 100003}."


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def current(self) -> int:
        return self.process.memory_info().rss

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.current())
            except psutil.Error:
                return
            time.sleep(0.02)

    def reset_peak(self) -> None:
        self.peak = self.current()

    def start(self) -> RssSampler:
        self.peak = self.current()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def new_project(client: httpx.Client, title: str) -> int:
    r = client.post("/api/projects/", json={"title": title, "label_config": CONFIG})
    r.raise_for_status()
    return r.json()["id"]


def import_json_lists(client: httpx.Client, pid: int, n: int) -> float:
    started = time.perf_counter()
    for start in range(0, n, PER_REQUEST):
        body = orjson.dumps([{"text": text_of(i)} for i in range(start, min(n, start + PER_REQUEST))])
        r = client.post(f"/api/projects/{pid}/import", content=body, headers={"Content-Type": "application/json"})
        if r.status_code != 201:
            raise RuntimeError(r.text[:500])
        assert r.json()["task_count"] == min(n, start + PER_REQUEST) - start, r.text[:300]
    return time.perf_counter() - started


def jsonl_body(n: int) -> Iterator[bytes]:
    chunk: list[bytes] = []
    for i in range(n):
        chunk.append(orjson.dumps({"text": text_of(i)}))
        if len(chunk) == 5000:
            chunk.append(b"")
            yield b"\n".join(chunk)
            chunk = []
    if chunk:
        chunk.append(b"")
        yield b"\n".join(chunk)


def import_jsonl(client: httpx.Client, pid: int, n: int) -> float:
    started = time.perf_counter()
    r = client.post(
        f"/api/projects/{pid}/import", content=jsonl_body(n), headers={"Content-Type": "application/x-ndjson"}
    )
    if r.status_code != 201:
        raise RuntimeError(r.text[:500])
    assert r.json()["task_count"] == n
    return time.perf_counter() - started


def export(client: httpx.Client, pid: int, export_type: str) -> tuple[float, int, int]:
    # PostgreSQL writes `"inner_id" : 1`, SQLite `"inner_id":1`: count the key itself.
    marker = b'"inner_id"' if export_type == "JSON" else b"\n"
    started = time.perf_counter()
    size = count = 0
    tail = b""
    with client.stream(
        "GET", f"/api/projects/{pid}/export", params={"exportType": export_type, "download_all_tasks": "true"}
    ) as r:
        r.raise_for_status()
        for chunk in r.iter_raw(1 << 20):
            size += len(chunk)
            data = tail + chunk
            count += data.count(marker)
            tail = data[-(len(marker) - 1) :] if len(marker) > 1 else b""
            if len(marker) > 1:
                count -= tail.count(marker)
    if export_type == "CSV":
        count -= 1  # header
    return time.perf_counter() - started, size, count


def mib(n: float) -> str:
    return f"{n / (1 << 20):7.1f} MiB"


def run(backend: str, sizes: list[int]) -> list[str]:
    server = Server(backend).start()
    assert server.process is not None
    rss = RssSampler(server.process.pid).start()
    cpu = CpuMeter(server)
    lines: list[str] = []
    mark = [cpu.sample()]

    def report(label: str, n: int, seconds: float, extra: str = "") -> None:
        (server0, db0), (server1, db1) = mark[0], cpu.sample()
        mark[0] = (server1, db1)
        cost = f"server CPU {server1 - server0:6.2f} s"
        if backend == "postgres":
            cost += f", PostgreSQL CPU {db1 - db0:6.2f} s"
        line = f"{backend:8s} {n:>9,d} {label:20s} {seconds:7.2f} s {n / seconds:>9,.0f} tasks/s  {cost} {extra}"
        print(line, flush=True)
        lines.append(line)

    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Token {TOKEN}"}, timeout=600) as client:
            print(f"{backend}: server RSS at start {mib(rss.current())}", flush=True)
            for n in sizes:
                before = rss.current()
                rss.reset_peak()
                pid = new_project(client, f"lists-{n}")
                mark[0] = cpu.sample()
                report("import JSON lists", n, import_json_lists(client, pid, n))
                for export_type in ("JSON", "CSV"):
                    seconds, size, count = export(client, pid, export_type)
                    assert count == n, (export_type, count, n)
                    report(f"export {export_type}", n, seconds, f"({mib(size)})")
                pid2 = new_project(client, f"jsonl-{n}")
                mark[0] = cpu.sample()
                report("import JSONL stream", n, import_jsonl(client, pid2, n))
                growth = rss.peak - before
                line = (
                    f"{backend:8s} {n:>9,d} server RSS before {mib(before)}, peak {mib(rss.peak)}, growth {mib(growth)}"
                )
                print(line, flush=True)
                lines.append(line)
                client.delete(f"/api/projects/{pid}/")
                client.delete(f"/api/projects/{pid2}/")
    finally:
        rss.stop()
        server.stop()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    summary: list[str] = []
    for backend in args.backends.split(","):
        summary += run(backend.strip(), sizes)
    print("\nsummary (Label Studio 1.23: 100k import ~29 s = 3,400 tasks/s; 110k export JSON 332 s, CSV 312 s)")
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
