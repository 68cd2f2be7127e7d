"""A real HTTP endpoint for webhook tests: records each POST and verifies its signature.

with WebhookReceiver(secret="...", fail_first=2) as receiver:   # 500, 500, then 200
    ... create a webhook with url=receiver.url ...
    requests = receiver.wait_for(1)

It speaks HTTP/1.1 with keep-alive (as production receivers do): `connections` counts the
connections the sender opened. `delay` makes every answer that many seconds late.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    signature_ok: bool | None  # None when the receiver has no secret
    at: float = 0.0  # time.time() when it arrived
    connection: int = 0  # which connection (the sender's port) carried it

    def json(self) -> Any:
        return orjson.loads(self.body)


class WebhookReceiver:
    def __init__(
        self, secret: str | None = None, fail_first: int = 0, fail_status: int = 500, delay: float = 0.0
    ) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.delay = delay
        self.received: list[Received] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: answers carry Content-Length
            # Headers and body leave in two writes: without this, Nagle holds the body back until the
            # sender's delayed ACK (40 ms) on every kept-alive request.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                arrived = time.time()
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size)
                if len(body) < size:
                    return  # the sender died mid-request: nothing was delivered
                headers = {k.lower(): v for k, v in self.headers.items()}
                signature_ok = None
                if receiver.secret is not None:
                    expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                    signature_ok = hmac.compare_digest(expected, headers.get("x-kubelabel-signature", ""))
                with receiver._cond:
                    failing = len(receiver.received) < receiver.fail_first
                    status = receiver.fail_status if failing else (200 if signature_ok is not False else 401)
                    port = self.client_address[1]
                    receiver.received.append(Received(self.path, headers, body, status, signature_ok, arrived, port))
                    receiver._cond.notify_all()
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)

    @property
    def connections(self) -> int:
        with self._cond:
            return len({r.connection for r in self.received})

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The first `count` requests, once they arrived (AssertionError after `timeout`)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} webhook request(s), got {len(self.received)}")
                self._cond.wait(remaining)
            return list(self.received[:count])

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
