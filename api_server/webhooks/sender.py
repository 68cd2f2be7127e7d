"""POSTs to webhook endpoints over kept-alive HTTP/1.1 connections, opened through the egress policy.

The delivery engine sends one small request per delivery, thousands a second when a team labels:
the standard library's `http.client` costs about a seventh of the CPU per request that httpx does
(measured: ~120 against ~860 microseconds on a local keep-alive connection), and the engine runs
in the API process beside the labeling loop, so every microsecond here is taken from annotators.

- Connections are kept per origin (scheme, host, port) and reused, the most recently used first;
  one idle for IDLE_SECONDS is closed. Each new one is opened by `egress.connect`, which resolves
  and checks the host and connects to a checked address (TLS still verifies the URL's host name).
  No proxies, no redirects.
- Each request has one deadline for the whole exchange (connect, send, the answer to its last
  byte): a watchdog closes the connection of a request past it, so an endpoint that drips its
  answer holds a sender no longer than the timeout.
- The answer is read to its end (up to `drain_limit` bytes) so the connection can be reused; a
  larger one closes the connection instead. Only the status code is returned.
- A request on a reused connection that the server had closed meanwhile (no answer byte came
  back) is sent once more on a new connection, as every HTTP client does; deliveries are
  at-least-once anyway.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections import defaultdict
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

from api_server.common import egress

IDLE_SECONDS = 30.0


class SendFailed(Exception):
    """The request got no HTTP answer (refused, reset, timed out, malformed answer)."""


class _Target(NamedTuple):
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line


@lru_cache(maxsize=4096)
def _target(url: str) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"} or not parts.hostname:
        raise egress.EgressRefused(url, "only http and https URLs with a host are allowed")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(scheme, parts.hostname, parts.port or (443 if scheme == "https" else 80), path)


class _Connection(http.client.HTTPConnection):
    """An http.client connection whose socket comes from the egress policy (and TLS when https)."""

    def __init__(
        self, target: _Target, kind: str, policy: egress.Policy | None, timeout: float, tls: ssl.SSLContext | None
    ) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.kind, self.policy, self.tls = kind, policy, tls
        self.origin = (target.scheme, target.host, target.port)
        self.reused = False

    def connect(self) -> None:
        sock = egress.connect(self.host, self.port, self.kind, self.timeout or 10.0, policy=self.policy)
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock

    def drop(self) -> None:
        """Close the socket under a request blocked on it (the watchdog's call)."""
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class Sender:
    def __init__(self, kind: str, timeout: float, drain_limit: int, *, policy: egress.Policy | None = None) -> None:
        self.kind, self.policy, self.timeout, self.drain_limit = kind, policy, timeout, drain_limit
        # By origin: idle connections with the time each was put back, the most recent last.
        self._idle: defaultdict[tuple[str, str, int], list[tuple[_Connection, float]]] = defaultdict(list)
        self._busy: dict[_Connection, float] = {}  # connection -> deadline
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None
        self._closed = threading.Event()
        self._watchdog: threading.Thread | None = None

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """The status code of the answer; SendFailed without one, EgressRefused for a refused address."""
        target = _target(url)
        deadline = time.monotonic() + self.timeout
        conn = self._checkout(target)
        try:
            try:
                status = self._exchange(conn, target, body, headers, deadline)
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                if not conn.reused or time.monotonic() >= deadline:
                    raise
                # The server closed this kept-alive connection between two requests: once more, anew.
                self._release(conn, keep=False)
                conn = self._open(target)
                status = self._exchange(conn, target, body, headers, deadline)
        except egress.EgressRefused:
            self._release(conn, keep=False)
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self._release(conn, keep=False)
            late = time.monotonic() >= deadline
            raise SendFailed(f"timed out after {self.timeout:g}s" if late else f"{type(exc).__name__}: {exc}") from None
        return status

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            for conns in self._idle.values():
                for conn, _ in conns:
                    conn.close()
            self._idle.clear()

    # --- connections ------------------------------------------------------------------------------

    def _checkout(self, target: _Target) -> _Connection:
        with self._lock:
            idle = self._idle.get((target.scheme, target.host, target.port))
            if idle:
                conn, _ = idle.pop()
                conn.reused = True
                return conn
        return self._open(target)

    def _open(self, target: _Target) -> _Connection:
        tls = None
        if target.scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()  # SSL_CERT_FILE / SSL_CERT_DIR apply
            tls = self._tls
        return _Connection(target, self.kind, self.policy, self.timeout, tls)

    def _release(self, conn: _Connection, *, keep: bool) -> None:
        with self._lock:
            self._busy.pop(conn, None)
            if keep and not self._closed.is_set():
                self._idle[conn.origin].append((conn, time.monotonic()))
                return
        conn.close()

    def _exchange(
        self, conn: _Connection, target: _Target, body: bytes, headers: dict[str, str], deadline: float
    ) -> int:
        with self._lock:
            self._busy[conn] = deadline
        self._watch()
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        read = 0
        while not response.isclosed() and read <= self.drain_limit:  # a larger answer closes the connection
            chunk = response.read(64 << 10)
            if not chunk:
                break
            read += len(chunk)
        self._release(conn, keep=response.isclosed() and not response.will_close)
        return response.status

    # --- the deadline -----------------------------------------------------------------------------

    def _watch(self) -> None:
        if self._watchdog is None:
            with self._lock:
                if self._watchdog is None:
                    name = "kubelabel-webhook-deadlines"
                    self._watchdog = threading.Thread(target=self._patrol, name=name, daemon=True)
                    self._watchdog.start()

    def _patrol(self) -> None:
        while not self._closed.wait(0.25):
            now = time.monotonic()
            with self._lock:
                late = [conn for conn, deadline in self._busy.items() if deadline <= now]
                stale = [conn for conns in self._idle.values() for conn, since in conns if now - since > IDLE_SECONDS]
                if stale:
                    for origin, conns in list(self._idle.items()):
                        self._idle[origin] = [(c, since) for c, since in conns if now - since <= IDLE_SECONDS]
            for conn in late:
                conn.drop()
            for conn in stale:
                conn.close()
