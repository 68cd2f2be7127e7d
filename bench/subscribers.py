"""Subscribers for bench/workflow.py, in a process of their own (the client's threads keep their cores' share).

Webhook receivers: HTTP/1.1 keep-alive endpoints answering 200 at once and recording, per
delivery, when it arrived and when its annotation was created (so lag = arrival - creation, on
one machine's clock). They share the machine under test, so they cost it as little as they can:
one asyncio loop, a request found by its Content-Length, bodies parsed after the load.
One of them may be broken: answering 500, or answering after 15 s (past the server's 10 s
webhook timeout). An S3 emulator (moto) serves the export-storage bucket.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import socket
import threading
import time
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

import orjson
import psutil

BROKEN_DELAY = 15.0
_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_DELIVERY = re.compile(rb"\r\nx-kubelabel-delivery:[ \t]*(\d+)", re.IGNORECASE)


class _Receiver(asyncio.Protocol):
    """One kept-alive connection: reads each request, records it, answers.

    As lean as a receiver can be (the machine under test runs it): a request costs a header
    search and a bytes copy; the body is parsed only after the load (`_parsed`)."""

    def __init__(self, records: list[tuple[float, bytes, bytes]], mode: str) -> None:
        self.records = records
        self.mode = mode
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end]
            found = _LENGTH.search(head)
            size = int(found.group(1)) if found else 0
            if len(self.buffer) < end + 4 + size:
                return
            body, self.buffer = self.buffer[end + 4 : end + 4 + size], self.buffer[end + 4 + size :]
            self.handle(head, body)

    def handle(self, head: bytes, body: bytes) -> None:
        if self.mode == "timeout":  # answers after the server's timeout: it gives up first
            asyncio.get_running_loop().call_later(BROKEN_DELAY, self.answer, b"200 OK")
            return
        if self.mode == "ok":
            delivery = _DELIVERY.search(head)
            self.records.append((time.time(), body, delivery.group(1) if delivery else b""))
        self.answer(b"500 Internal Server Error" if self.mode == "500" else b"200 OK")

    def answer(self, status: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")


def _parsed(records: list[tuple[float, bytes, bytes]]) -> list[tuple[float, float, str]]:
    """(arrival, the annotation's creation, delivery id) per delivery."""
    out = []
    for arrived, body, delivery in records:
        created = orjson.loads(body).get("annotation", {}).get("created_at")
        if created:
            out.append((arrived, datetime.fromisoformat(created).timestamp(), delivery.decode()))
    return out


def _serve(loop: asyncio.AbstractEventLoop, records: list[tuple[float, bytes, bytes]], mode: str) -> str:
    server = asyncio.run_coroutine_threadsafe(
        loop.create_server(lambda: _Receiver(records, mode), "127.0.0.1", 0), loop
    ).result()
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"


def _main(healthy: int, broken: str | None, s3: bool, conn: Connection) -> None:
    records: list[list[tuple[float, bytes, bytes]]] = [[] for _ in range(healthy)]
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    urls = [_serve(loop, records[i], "ok") for i in range(healthy)]
    if broken:
        urls.append(_serve(loop, [], broken))
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
            conn.send([_parsed(list(r)) for r in records])
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
        self.process = psutil.Process(self._process.pid)  # its CPU is the machine's too

    def counts(self) -> list[int]:
        self._conn.send("count")
        return list(self._conn.recv())

    def stop(self) -> list[list[tuple[float, float, str]]]:
        self._conn.send("stop")
        records = self._conn.recv()
        self._process.terminate()
        self._process.join(5)
        return records
