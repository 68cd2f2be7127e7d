"""POSTs to webhook endpoints over kept-alive HTTP/1.1 connections, opened through the egress policy.

The delivery engine sends one small request per delivery, thousands a second when a team labels,
and it runs in the API process beside the labeling loop: every microsecond here is taken from
annotators. So a request is written as one buffer and its answer read with a minimal HTTP/1.1
parser (status line, Content-Length, chunked bodies, Connection): measured on a local keep-alive
connection, ~20 microseconds of CPU a request, against ~140 for the standard library's
`http.client` (it parses every answer's headers as an e-mail message) and ~860 for httpx.

- Connections are kept per origin (scheme, host, port) and reused, the most recently used first;
  one idle for IDLE_SECONDS is closed. Each new one is opened by `egress.connect`, which resolves
  and checks the host and connects to a checked address (TLS still verifies the URL's host name).
  No proxies, no redirects.
- Each request has one deadline for the whole exchange (connect, send, the answer to its last
  byte): a watchdog closes the connection of a request past it, so an endpoint that drips its
  answer holds a sender no longer than the timeout.
- The answer is read to its end (up to `drain_limit` bytes of body) so the connection can be
  reused; a larger one, an answer without a length, `Connection: close` or HTTP/1.0 close the
  connection instead. Only the status code is returned.
- A request on a reused connection that the server had closed meanwhile (no answer byte came
  back) is sent once more on a new connection, as every HTTP client does; deliveries are
  at-least-once anyway.
"""

from __future__ import annotations

import contextlib
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
_HEAD_LIMIT = 64 << 10  # an answer's status line and headers
_READ = 64 << 10


class SendFailed(Exception):
    """The request got no HTTP answer (refused, reset, timed out, malformed answer)."""


class _Closed(ConnectionError):
    """The server closed the connection before any byte of an answer."""


class _Malformed(ValueError):
    """Not an HTTP/1.x answer."""


class _Target(NamedTuple):
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line
    host_header: str


@lru_cache(maxsize=4096)
def _target(url: str) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"} or not parts.hostname:
        raise egress.EgressRefused(url, "only http and https URLs with a host are allowed")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default = 443 if scheme == "https" else 80
    port = parts.port or default
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return _Target(scheme, parts.hostname, port, path, host if port == default else f"{host}:{port}")


def _request(target: _Target, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {target.path} HTTP/1.1", f"Host: {target.host_header}"]
    for name, value in headers.items():
        if "\r" in name or "\n" in name or ":" in name or "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r}: line breaks and colons in names are not allowed")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}\r\n\r\n")
    return "\r\n".join(lines).encode("latin-1") + body


class _Connection:
    """One socket from the egress policy (TLS when https) and what was read past the last answer."""

    def __init__(
        self, target: _Target, kind: str, policy: egress.Policy | None, timeout: float, tls: ssl.SSLContext | None
    ) -> None:
        self.target, self.kind, self.policy, self.timeout, self.tls = target, kind, policy, timeout, tls
        self.origin = (target.scheme, target.host, target.port)
        self.sock: socket.socket | None = None
        self.reused = False

    def open(self) -> socket.socket:
        sock = egress.connect(self.target.host, self.target.port, self.kind, self.timeout, policy=self.policy)
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(sock, server_hostname=self.target.host)
            except BaseException:
                sock.close()
                raise
        sock.settimeout(self.timeout)
        self.sock = sock
        return sock

    def drop(self) -> None:
        """Close the socket under a request blocked on it (the watchdog's call)."""
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _answer(sock: socket.socket, drain_limit: int) -> tuple[int, bool]:
    """Read one answer: its status, and whether the connection may carry another request."""
    buf = b""
    while True:  # interim 1xx answers come before the real one
        while (end := buf.find(b"\r\n\r\n")) < 0:
            if len(buf) > _HEAD_LIMIT:
                raise _Malformed("the answer's headers are too long")
            chunk = sock.recv(_READ)
            if not chunk:
                raise _Closed("the server closed the connection") if not buf else _Malformed("the answer was cut")
            buf += chunk
        lines = buf[:end].split(b"\r\n")
        buf = buf[end + 4 :]
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise _Malformed(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
        status = int(code)
        if 100 <= status < 200:
            continue
        fields: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip().lower()
        keep = version == b"HTTP/1.1" and b"close" not in fields.get(b"connection", b"")
        if status in (204, 304):
            return status, keep and not buf
        if b"chunked" in fields.get(b"transfer-encoding", b""):
            return status, keep and _drain_chunked(sock, buf, drain_limit)
        length = fields.get(b"content-length")
        if length is None or not length.isdigit():
            return status, False  # the body ends when the connection does
        wanted = int(length)
        if wanted > drain_limit:
            return status, False
        while len(buf) < wanted:
            buf += _more(sock)
        return status, keep and len(buf) == wanted


def _more(sock: socket.socket) -> bytes:
    chunk = sock.recv(_READ)
    if not chunk:  # a status without its whole answer: the receiver may not have taken the delivery
        raise _Malformed("the answer was cut")
    return chunk


def _drain_chunked(sock: socket.socket, buf: bytes, drain_limit: int) -> bool:
    """Read a chunked body to its end; False (close the connection) when it is larger than `drain_limit`."""
    read = 0
    while True:
        while (end := buf.find(b"\r\n")) < 0:
            if len(buf) > 1024:
                raise _Malformed("a chunk's size line is too long")
            buf += _more(sock)
        try:
            size = int(buf[:end].split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _Malformed("a chunk's size is not a number") from None
        buf = buf[end + 2 :]
        if size == 0:
            # Trailers, then an empty line.
            while not (buf.startswith(b"\r\n") or b"\r\n\r\n" in buf):
                if len(buf) > _HEAD_LIMIT:
                    raise _Malformed("the answer's trailers are too long")
                buf += _more(sock)
            rest = buf[2:] if buf.startswith(b"\r\n") else buf.split(b"\r\n\r\n", 1)[1]
            return not rest
        read += size
        if read > drain_limit:
            return False
        while len(buf) < size + 2:
            buf += _more(sock)
        buf = buf[size + 2 :]


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
            except (BrokenPipeError, ConnectionResetError, _Closed):
                if not conn.reused or time.monotonic() >= deadline:
                    raise
                # The server closed this kept-alive connection between two requests: once more, anew.
                self._release(conn, keep=False)
                conn = self._open(target)
                status = self._exchange(conn, target, body, headers, deadline)
        except egress.EgressRefused:
            self._release(conn, keep=False)
            raise
        except (OSError, ValueError) as exc:
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
        request = _request(target, body, headers)
        sock = conn.sock or conn.open()
        sock.sendall(request)
        status, keep = _answer(sock, self.drain_limit)
        self._release(conn, keep=keep)
        return status

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
                # Under the lock: a connection released and reused since would be dropped under its
                # next request.
                for conn, deadline in self._busy.items():
                    if deadline <= now:
                        conn.drop()
                stale = [conn for conns in self._idle.values() for conn, since in conns if now - since > IDLE_SECONDS]
                if stale:
                    for origin, conns in list(self._idle.items()):
                        self._idle[origin] = [(c, since) for c, since in conns if now - since <= IDLE_SECONDS]
            for conn in stale:
                conn.close()
