"""Storage sync benchmark: N objects in the S3 emulator synced into a project by `kubelabel sync`.

    .venv/bin/python bench/sync.py                     # 100,000 objects (and 10,000 for the memory ratio)
    .venv/bin/python bench/sync.py --objects 20000 --postgres

Starts moto (in this process; the bucket is filled through moto's backend, not over HTTP),
a `kubelabel serve` subprocess (SQLite in a temp dir, or --postgres on 127.0.0.1:5432), then
runs `kubelabel sync` as the operator's Job would and reports objects/s and the sync
process's peak RSS. Running a smaller bucket first gives the memory ratio: flat memory
means the ratio stays near 1 while the object count grows 10x. Target: 100,000 objects in
at most 60 s. Then a re-sync (nothing new) shows the cost of the idempotency check.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.net import free_port, wait_for_port  # noqa: E402

TOKEN = "bench-admin-token-0123456789"
EGRESS = "storage:loopback"  # the S3 emulator listens on 127.0.0.1
CONFIG = '<View><Image name="img" value="$image"/><Choices name="c" toName="img"><Choice value="a"/></Choices></View>'


def fast_moto_listing() -> None:
    """Replace moto's ListObjectsV2 (it sorts the whole bucket for every page: O(n) per page, so a
    100,000-object listing costs the emulator minutes) with a bisect over a cached sorted key list.
    The sync under test is unchanged; --stock-moto measures with moto's own listing."""
    from bisect import bisect_left, bisect_right

    from moto.s3.models import S3Backend

    cache: dict[str, tuple[int, list[str]]] = {}

    def list_objects_v2(self, bucket, prefix, delimiter, continuation_token, start_after, max_keys):  # type: ignore[no-untyped-def]
        if delimiter:
            return original(self, bucket, prefix, delimiter, continuation_token, start_after, max_keys)
        size, names = cache.get(bucket.name, (-1, []))
        if size != len(bucket.keys):
            names = sorted(bucket.keys.keys())
            cache[bucket.name] = (len(names), names)
        prefix = prefix or ""
        start = bisect_left(names, prefix)
        limit = self._pagination_tokens.get(continuation_token) if continuation_token else start_after
        if limit:
            start = max(start, bisect_right(names, limit))
        page = []
        for name in names[start : start + max_keys + 1]:
            if not name.startswith(prefix):
                break
            page.append(bucket.keys[name])
        return self._truncate_result(page, max_keys)

    original = S3Backend.list_objects_v2
    S3Backend.list_objects_v2 = list_objects_v2  # type: ignore[method-assign]
    _fast_moto_listing_response()


def _fast_moto_listing_response() -> None:
    """moto renders each listed key through its generic serializer, which re-parses every
    timestamp with dateutil (about 2 ms per key): 1,000-key pages take seconds. Render the
    ListObjectsV2 XML directly instead (same elements, no delimiter support needed here)."""
    from xml.sax.saxutils import escape

    from moto.s3.responses import S3Response

    original = S3Response.list_objects_v2

    def list_objects_v2(self):  # type: ignore[no-untyped-def]
        if self.querystring.get("delimiter"):
            return original(self)
        bucket = self.backend.get_bucket(self.bucket_name)
        q = self.querystring
        token = q.get("continuation-token", [None])[0]
        prefix = q.get("prefix", [""])[0] or ""
        max_keys = int(q.get("max-keys", ["1000"])[0])
        keys, truncated, next_token = self.backend.list_objects_v2(
            bucket=bucket,
            prefix=prefix,
            delimiter=None,
            continuation_token=token,
            start_after=q.get("start-after", [None])[0],
            max_keys=max_keys,
        )
        url = q.get("encoding-type", [None])[0] == "url"
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{escape(bucket.name)}</Name><Prefix>{escape(prefix)}</Prefix>"
            f"<MaxKeys>{max_keys}</MaxKeys><KeyCount>{len(keys)}</KeyCount>"
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
        ]
        if url:
            parts.append("<EncodingType>url</EncodingType>")
        if next_token:
            parts.append(f"<NextContinuationToken>{next_token}</NextContinuationToken>")
        for key in keys:
            parts.append(
                f"<Contents><Key>{escape(key.safe_name('url' if url else None))}</Key>"
                f"<LastModified>{key.last_modified_ISO8601}</LastModified>"
                f"<ETag>{escape(key.etag)}</ETag><Size>{key.size}</Size>"
                "<StorageClass>STANDARD</StorageClass></Contents>"
            )
        parts.append("</ListBucketResult>")
        return 200, {"Content-Type": "application/xml"}, "".join(parts)

    S3Response.list_objects_v2 = list_objects_v2  # type: ignore[method-assign]


def start_moto() -> tuple[object, str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def fill_bucket(bucket: str, count: int) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_bucket(bucket, "us-east-1")
    for i in range(count):
        backend.put_object(bucket, f"images/{i:07d}.jpg", b"x")


def start_api(database_url: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KUBELABEL_DATA_DIR": str(data_dir),
        "KUBELABEL_ADMIN_TOKEN": TOKEN,
        "KUBELABEL_LOG_LEVEL": "warning",
        "KUBELABEL_EGRESS_ALLOW": EGRESS,
    }
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "kubelabel_cli", "serve", "--port", str(port)], env=env, cwd=ROOT)
    wait_for_port(port, timeout=120)
    return proc, f"http://127.0.0.1:{port}"


def _vm_hwm_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_sync(api_url: str, endpoint: str, bucket: str, project: int, batch: int, name: str) -> dict[str, float]:
    creds = Path(tempfile.mkdtemp(prefix="bench-creds-"))
    (creds / "AWS_ACCESS_KEY_ID").write_text("bench")
    (creds / "AWS_SECRET_ACCESS_KEY").write_text("bench")
    spec = {"provider": "s3", "bucket": bucket, "endpoint": endpoint, "prefix": "images/", "mode": "objects"}
    env = {
        **os.environ,
        "KUBELABEL_API_URL": api_url,
        "KUBELABEL_API_TOKEN": TOKEN,
        "KUBELABEL_PROJECT_ID": str(project),
        "KUBELABEL_STORAGE_NAME": name,
        "KUBELABEL_STORAGE_SPEC": json.dumps(spec),
        "KUBELABEL_STORAGE_CREDENTIALS_DIR": str(creds),
        "KUBELABEL_RESULT_FILE": str(creds / "result.json"),
        "KUBELABEL_SYNC_BATCH_SIZE": str(batch),
        "KUBELABEL_EGRESS_ALLOW": EGRESS,
    }
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubelabel_cli", "sync"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL
    )
    # Sample the child's RSS and its high-water mark (VmHWM) until it exits, without reaping it.
    # os.wait4's ru_maxrss is not usable: Linux keeps the forking parent's peak across execve,
    # and this process holds the emulator's objects.
    samples: list[float] = []
    hwm = 0.0
    watched = psutil.Process(proc.pid)
    while True:
        try:
            if watched.status() == psutil.STATUS_ZOMBIE:
                break
            samples.append(watched.memory_info().rss / 2**20)
            hwm = max(hwm, _vm_hwm_mib(proc.pid))
        except (psutil.Error, OSError):
            break
        time.sleep(0.05)
    _, status, _usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    result = json.loads((creds / "result.json").read_text())
    shutil.rmtree(creds, ignore_errors=True)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"sync failed: {result}")
    quarters = (
        [samples[min(len(samples) - 1, int(len(samples) * q))] for q in (0.25, 0.5, 0.75, 1.0)] if samples else []
    )
    return {"seconds": elapsed, "count": result["count"], "peak_rss_mb": hwm, "rss_quarters": quarters}


def sync_bucket(api: httpx.Client, api_url: str, endpoint: str, count: int, batch: int) -> tuple[dict, dict]:
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    t = time.perf_counter()
    fill_bucket(bucket, count)
    print(f"  filled s3://{bucket} with {count} objects in {time.perf_counter() - t:.1f}s", flush=True)
    r = api.post("/api/projects/", json={"title": f"bench {count}", "label_config": CONFIG})
    r.raise_for_status()
    project = r.json()["id"]
    first = run_sync(api_url, endpoint, bucket, project, batch, f"bench/{bucket}")
    if first["count"] != count:
        raise SystemExit(f"expected {count} tasks, the sync reported {first['count']}")
    again = run_sync(api_url, endpoint, bucket, project, batch, f"bench/{bucket}")
    if again["count"] != 0:
        raise SystemExit(f"the re-sync created {again['count']} tasks, expected none")
    return first, again


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000, help="the smaller bucket for the memory ratio (0: skip)")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL on 127.0.0.1:5432 instead of SQLite")
    parser.add_argument("--stock-moto", action="store_true", help="keep moto's own (slow) ListObjectsV2")
    args = parser.parse_args()
    if not args.stock_moto:
        fast_moto_listing()

    moto, endpoint = start_moto()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    database = f"sqlite:///{data_dir / 'kubelabel.db'}"
    pg_name = None
    if args.postgres:
        import psycopg

        pg_name = f"kl_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        database = f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg_name}"
    api_proc, api_url = start_api(database, data_dir)
    try:
        with httpx.Client(base_url=api_url, headers={"Authorization": f"Token {TOKEN}"}, timeout=60) as api:
            rows = []
            for count in [c for c in (args.small, args.objects) if c]:
                print(f"sync of {count} objects ({'PostgreSQL' if args.postgres else 'SQLite'}, batch {args.batch})")
                first, again = sync_bucket(api, api_url, endpoint, count, args.batch)
                rows.append((count, first, again))
                print(
                    f"  first sync : {first['seconds']:.1f}s  {count / first['seconds']:,.0f} objects/s  "
                    f"peak RSS {first['peak_rss_mb']:.0f} MiB  (RSS at 25/50/75/100% of the run: "
                    + " / ".join(f"{v:.0f}" for v in first["rss_quarters"])
                    + " MiB)"
                )
                print(
                    f"  re-sync    : {again['seconds']:.1f}s  {count / again['seconds']:,.0f} objects/s  "
                    f"peak RSS {again['peak_rss_mb']:.0f} MiB  (0 new)"
                )
            if len(rows) == 2:
                (c1, f1, _), (c2, f2, _) = rows
                print(
                    f"memory ratio: peak RSS at {c2} / at {c1} objects = {f2['peak_rss_mb'] / f1['peak_rss_mb']:.2f} "
                    f"(objects x{c2 / c1:.0f}); time ratio {f2['seconds'] / f1['seconds']:.1f}"
                )
            big = rows[-1]
            verdict = "within" if big[1]["seconds"] <= 60 else "over"
            print(f"target: {big[0]} objects in <= 60 s: {big[1]['seconds']:.1f}s ({verdict})")
    finally:
        api_proc.terminate()
        api_proc.wait(timeout=30)
        moto.stop()  # type: ignore[attr-defined]
        shutil.rmtree(data_dir, ignore_errors=True)
        if pg_name:
            import psycopg

            with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
