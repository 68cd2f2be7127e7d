"""Media upload throughput and the server's memory while it streams 1 GB of files (run by hand).

Starts `kubelabel serve` per backend, then POSTs one multipart request to
`/api/projects/{id}/import` holding `--total-mb` of media files (`--file-mb` each: PNG and WAV
headers over filler bytes; the client generates the body as it sends it, chunked, so neither
side holds it whole) and prints MB/s, the server's CPU seconds and its RSS before and at peak
(sampled every 20 ms). `--s3` stores the files in a moto S3 bucket (the project's import
storage) instead of the data directory.

    .venv/bin/python bench/media.py                          # 1 GiB in 4 MiB files, SQLite and PostgreSQL
    .venv/bin/python bench/media.py --backends sqlite --s3   # the same into an S3 emulator bucket
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
from apiserver import TOKEN, CpuMeter, Server
from import_export import RssSampler, mib

from tests.support.net import free_port, wait_for_port
from tests.support.processes import stop_process

CONFIG = """<View>
  <Image name="img" value="$image"/>
  <Audio name="audio" value="$audio"/>
  <Choices name="kind" toName="img,audio"><Choice value="a"/><Choice value="b"/></Choices>
</View>"""
CHUNK = 1 << 20


def header(i: int, size: int) -> tuple[str, bytes, str]:
    """(file name, first bytes, part Content-Type): every tenth file a WAV, the rest PNGs."""
    if i % 10 == 9:
        data = size - 44
        fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
        head = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data"
        return f"clip-{i}.wav", head + struct.pack("<I", data), "audio/wav"
    return f"image-{i}.png", b"\x89PNG\r\n\x1a\n" + struct.pack(">I", i), "image/png"


def body(boundary: str, files: int, size: int) -> Iterator[bytes]:
    filler = os.urandom(CHUNK)
    for i in range(files):
        name, head, ctype = header(i, size)
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n"
        ).encode() + head
        left = size - len(head)
        while left > 0:
            n = min(left, CHUNK)
            yield filler[:n]
            left -= n
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, timeout=60)
    return proc, f"http://127.0.0.1:{port}"


def run(backend: str, total_mb: int, file_mb: int, s3: str | None) -> str:
    env = {
        "KUBELABEL_MAX_UPLOAD_MB": str(total_mb * 2),
        "KUBELABEL_MEDIA_MAX_FILE_MB": str(file_mb + 1),
        "KUBELABEL_MEDIA_MAX_FILES": "10000",
        # The emulator listens on loopback, which storages may not reach by default.
        "KUBELABEL_EGRESS_ALLOW": "storage:private+loopback",
    }
    server = Server(backend, env=env).start()
    assert server.process is not None
    rss = RssSampler(server.process.pid).start()
    cpu = CpuMeter(server)
    size = file_mb << 20
    files = total_mb // file_mb
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Token {TOKEN}"}, timeout=3600) as client:
            r = client.post("/api/projects/", json={"title": "media bench", "label_config": CONFIG})
            r.raise_for_status()
            pid = r.json()["id"]
            where = "data directory"
            if s3:
                import boto3

                bucket = f"kl-bench-{uuid.uuid4().hex[:10]}"
                boto3.client(
                    "s3", endpoint_url=s3, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
                ).create_bucket(Bucket=bucket)
                storage = {
                    "project": pid,
                    "bucket": bucket,
                    "prefix": "media",
                    "s3_endpoint": s3,
                    "region_name": "us-east-1",
                    "aws_access_key_id": "x",
                    "aws_secret_access_key": "x",
                }
                client.post("/api/storages/s3/", json=storage).raise_for_status()
                where = "S3 emulator"
            before = rss.current()
            rss.reset_peak()
            cpu0 = cpu.sample()
            boundary = uuid.uuid4().hex
            started = time.perf_counter()
            r = client.post(
                f"/api/projects/{pid}/import",
                content=body(boundary, files, size),
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            seconds = time.perf_counter() - started
            cpu1 = cpu.sample()
            if r.status_code != 201:
                raise RuntimeError(f"upload failed: {r.status_code} {r.text[:500]}")
            assert r.json()["task_count"] == files, r.text[:300]
            sent = files * size
            line = (
                f"{backend:8s} {where:14s} {files:5d} files x {file_mb} MiB = {mib(sent)} in {seconds:6.2f} s: "
                f"{sent / seconds / 1e6:6.1f} MB/s, server CPU {cpu1[0] - cpu0[0]:5.2f} s; "
                f"server RSS before {mib(before)}, peak {mib(rss.peak)} (+{mib(rss.peak - before).strip()})"
            )
            print(line, flush=True)
            return line
    finally:
        rss.stop()
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--total-mb", type=int, default=1024)
    parser.add_argument("--file-mb", type=int, default=4)
    parser.add_argument("--s3", action="store_true", help="store the files in a moto S3 bucket")
    args = parser.parse_args()
    moto = None
    lines: list[str] = []
    try:
        endpoint = None
        if args.s3:
            moto, endpoint = start_moto()
        for backend in args.backends.split(","):
            lines.append(run(backend.strip(), args.total_mb, args.file_mb, endpoint))
    finally:
        if moto is not None:
            stop_process(moto)
    print("\nsummary")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
