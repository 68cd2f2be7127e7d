"""Filtered task lists over a big project: p50/p99 latency of GET /api/tasks/ with a query (run by hand).

Starts `kubelabel serve` per backend on a fresh database, imports N tasks ({"text", "tag", "n"})
over HTTP, then gives them facts straight in SQL (one prediction on every other task with a
score, one annotation on every tenth, the task counters to match), and times `GET /api/tasks/`
with page_size 50 (Label Studio's response, `total` included):

- unfiltered, first and second page;
- three filters ANDed (data.tag = "red", predictions_score < 0.5, not completed): first page,
  second page, a page deep in the list by keyset (`after=`) and by page number (offset);
- the annotator filter (EXISTS over annotations), first and second page.

A first page counts the list's `total`; the pages after it reuse that count (tasks.totals), so
page 1 shows the cost of the count and the later pages the cost of a page.

    .venv/bin/python bench/views.py                          # 1,000,000 tasks, both databases
    .venv/bin/python bench/views.py --tasks 100000 --backends sqlite --requests 30
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable

import httpx
import orjson
import psycopg
from apiserver import TOKEN, Server

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/></Choices>
</View>"""
PER_REQUEST = 100_000
TAGS = ("red", "green", "blue")
RESULT = '[{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]'


def item(name: str, operator: str, type_: str, value: object) -> dict[str, object]:
    return {"filter": f"filter:tasks:{name}", "operator": operator, "type": type_, "value": value}


THREE = json.dumps(
    {
        "filters": {
            "conjunction": "and",
            "items": [
                item("data.tag", "equal", "String", "red"),
                item("predictions_score", "less", "Number", 0.5),
                item("completed_at", "empty", "Datetime", True),
            ],
        }
    }
)


def load(client: httpx.Client, n: int) -> int:
    pid = client.post("/api/projects/", json={"title": f"views-{n}", "label_config": CONFIG}).json()["id"]
    for start in range(0, n, PER_REQUEST):
        rows = [{"text": f"task {i}", "tag": TAGS[i % 3], "n": i} for i in range(start, min(n, start + PER_REQUEST))]
        r = client.post(
            f"/api/projects/{pid}/import", content=orjson.dumps(rows), headers={"Content-Type": "application/json"}
        )
        if r.status_code != 201:
            raise RuntimeError(r.text[:500])
    return pid


# Facts written in SQL (the API would take hours for a million annotations): predictions on even
# ids, annotations by the admin (user 1) on ids divisible by 10, counters and is_labeled to match.
FACTS = [
    "INSERT INTO predictions (task_id, project_id, result, score, model_version, created_at, updated_at)"
    " SELECT id, project_id, {result}, (id % 1000) / 1000.0, 'v1', {now}, {now} FROM tasks WHERE id % 2 = 0",
    "INSERT INTO annotations (task_id, project_id, completed_by_id, result, was_cancelled, ground_truth,"
    " bulk_created, created_at, updated_at)"
    " SELECT id, project_id, 1, {result}, {false}, {false}, {false}, {now}, {now} FROM tasks WHERE id % 10 = 0",
    "UPDATE tasks SET total_predictions = 1, prediction_score = (id % 1000) / 1000.0 WHERE id % 2 = 0",
    "UPDATE tasks SET total_annotations = 1, is_labeled = {true} WHERE id % 10 = 0",
]


def add_facts(server: Server) -> None:
    if server.backend == "postgres":
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            for sql in FACTS:
                conn.execute(sql.format(result=f"'{RESULT}'::jsonb", now="now()", true="true", false="false"))
            conn.execute("ANALYZE")
        return
    conn = sqlite3.connect(server.dsn, timeout=60)
    try:
        for sql in FACTS:
            conn.execute(sql.format(result=f"'{RESULT}'", now="datetime('now')", true="1", false="0"))
        conn.commit()
        conn.execute("ANALYZE")
    finally:
        conn.close()


def timed(call: Callable[[], httpx.Response], requests: int) -> tuple[float, float, dict[str, object]]:
    """(p50 ms, p99 ms, last body) over `requests` calls, after one warm-up."""
    body = call().raise_for_status().json()
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        body = call().raise_for_status().json()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    return statistics.median(times), p99, body


def run(backend: str, n: int, requests: int) -> list[str]:
    server = Server(backend).start()
    lines: list[str] = []
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Token {TOKEN}"}, timeout=600) as client:
            started = time.perf_counter()
            pid = load(client, n)
            add_facts(server)
            print(f"{backend}: {n:,} tasks loaded in {time.perf_counter() - started:.0f} s", flush=True)

            def tasks(**params: object) -> Callable[[], httpx.Response]:
                return lambda: client.get("/api/tasks/", params={"project": pid, "page_size": 50, **params})

            after = n // 2  # a task halfway through (ids start at 1 in the fresh database)
            annotator = json.dumps({"filters": {"items": [item("annotators", "contains", "List", 1)]}})
            cases = [
                ("unfiltered, page 1", tasks()),
                ("unfiltered, page 2", tasks(page=2)),
                ("3 filters AND, page 1", tasks(query=THREE)),
                ("3 filters AND, page 2", tasks(query=THREE, page=2)),
                ("3 filters AND, keyset mid-list", tasks(query=THREE, after=after)),
                ("3 filters AND, page 100 (offset)", tasks(query=THREE, page=100)),
                ("annotators contains, page 1", tasks(query=annotator)),
                ("annotators contains, page 2", tasks(query=annotator, page=2)),
            ]
            # First pages are compared with the unfiltered first page (each counts its list),
            # later pages with the unfiltered second page (each reuses its count).
            base: dict[bool, float] = {}
            for label, call in cases:
                p50, p99, body = timed(call, requests)
                first = label.endswith("page 1")
                base.setdefault(first, p50)
                line = (
                    f"{backend:8s} {n:>9,d} {label:34s} p50 {p50:8.1f} ms  p99 {p99:8.1f} ms"
                    f"  ({p50 / base[first]:5.1f}x unfiltered {'page 1' if first else 'page 2'})"
                    f"  total {body['total']:,}"
                )
                print(line, flush=True)
                lines.append(line)
    finally:
        server.stop()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    summary: list[str] = []
    for backend in args.backends.split(","):
        summary += run(backend.strip(), args.tasks, args.requests)
    print("\nsummary")
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
