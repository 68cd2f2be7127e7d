"""Subscribers for bench/workflow.py, in a process of their own (the client's threads keep their cores' share).

Webhook receivers: HTTP/1.1 keep-alive endpoints answering 200 at once and recording, per
delivery, when it arrived and when its annotation was created (so lag = arrival - creation, on
one machine's clock). One of them may be broken: answering 500, or answering after 15 s (past
the server's 10 s webhook timeout). An S3 emulator (moto) serves the export-storage bucket.
"""

from __future__ import annotations

import multiprocessing
import socket
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from typing import Any

import orjson

BROKEN_DELAY = 15.0


def _receiver(records: list[tuple[float, float, str]], mode: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes: without this, Nagle holds the body back until the
        # sender's delayed ACK (40 ms) on every kept-alive request.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrived = time.time()
            if mode == "timeout":
                time.sleep(BROKEN_DELAY)
            status = 500 if mode == "500" else 200
            if mode == "ok":
                event = orjson.loads(body)
                created = event.get("annotation", {}).get("created_at")
                if created:
                    at = datetime.fromisoformat(created).timestamp()
                    records.append((arrived, at, self.headers.get("X-Kubelabel-Delivery", "")))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _main(healthy: int, broken: str | None, s3: bool, conn: Connection) -> None:
    records: list[list[tuple[float, float, str]]] = [[] for _ in range(healthy)]
    servers = [_receiver(records[i], "ok") for i in range(healthy)]
    if broken:
        servers.append(_receiver([], broken))
    urls = [f"http://127.0.0.1:{s.server_address[1]}/hook" for s in servers]
    endpoint = None
    if s3:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        moto.start()
        endpoint = f"http://127.0.0.1:{port}"
    conn.send((urls, endpoint))
    while True:
        message = conn.recv()
        if message == "stop":
            conn.send(records)
            return
        conn.send([len(r) for r in records])


class Subscribers:
    """The receivers' process: `urls` (healthy first, then the broken one), `s3_endpoint`, and their records."""

    def __init__(self, healthy: int, broken: str | None = None, s3: bool = False) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, theirs = ctx.Pipe()
        self._process = ctx.Process(target=_main, args=(healthy, broken, s3, theirs), daemon=True)
        self._process.start()
        self.urls, self.s3_endpoint = self._conn.recv()

    def counts(self) -> list[int]:
        self._conn.send("count")
        return list(self._conn.recv())

    def stop(self) -> list[list[tuple[float, float, str]]]:
        self._conn.send("stop")
        records = self._conn.recv()
        self._process.terminate()
        self._process.join(5)
        return records
