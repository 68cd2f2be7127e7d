"""The webhook sender (api_server.webhooks.sender) against a local server that misbehaves on purpose.

The server speaks just enough HTTP/1.1 to answer POSTs; each test sets how it answers.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from api_server.common.egress import EgressRefused, Policy
from api_server.webhooks.sender import Sender, SendFailed

LOOPBACK = Policy.parse("webhook:loopback")
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Server:
    """Accepts connections on 127.0.0.1; `answer(conn, request_number)` writes each answer."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.answer: Callable[[socket.socket, int], bool] = lambda conn, n: conn.sendall(OK) or True
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = int(
                    next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
                )
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + buffer[:length])
                buffer = buffer[length:]
                if not self.answer(conn, len(self.requests)):
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


@pytest.fixture
def sender() -> Iterator[Sender]:
    s = Sender("webhook", 2.0, 64 << 10, policy=LOOPBACK)
    yield s
    s.close()


def test_requests_share_one_kept_alive_connection(server: Server, sender: Sender) -> None:
    for n in range(20):
        assert sender.post(server.url("/hook?n=1"), b'{"n": %d}' % n, {"X-Custom": "yes"}) == 200
    assert server.connections == 1 and len(server.requests) == 20
    first = server.requests[0]
    assert first.startswith(b"POST /hook?n=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}".encode() in first and b"X-Custom: yes" in first
    assert first.endswith(b'\r\n\r\n{"n": 0}')


def test_the_status_is_returned_and_chunked_answers_are_drained(server: Server, sender: Sender) -> None:
    chunked = b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    server.answer = lambda conn, n: conn.sendall(chunked if n % 2 else OK) or True
    assert [sender.post(server.url(), b"{}", {}) for _ in range(4)] == [500, 200, 500, 200]
    assert server.connections == 1


def test_a_connection_the_server_closed_between_requests_is_replaced(server: Server, sender: Sender) -> None:
    # The server answers, then closes without saying so (an idle timeout): the next request
    # finds the connection dead and goes out once more on a new one.
    server.answer = lambda conn, n: conn.sendall(OK) and False
    assert [sender.post(server.url(), b"{}", {}) for _ in range(3)] == [200, 200, 200]
    assert server.connections == 3 and len(server.requests) == 3


def test_connection_close_and_large_answers_are_not_kept(server: Server, sender: Sender) -> None:
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    large = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (1 << 20) + b"x" * (1 << 20)
    answers = {1: close, 2: large}
    server.answer = lambda conn, n: conn.sendall(answers.get(n, OK)) or n not in answers
    assert [sender.post(server.url(), b"{}", {}) for _ in range(3)] == [200, 200, 200]
    assert server.connections == 3


def test_an_answer_dripping_in_is_cut_at_the_deadline(server: Server, sender: Sender) -> None:
    def drip(conn: socket.socket, n: int) -> bool:
        for byte in OK:  # one byte every 0.3 s: each read is within the timeout, the whole is not
            conn.sendall(bytes([byte]))
            time.sleep(0.3)
        return True

    server.answer = drip
    started = time.monotonic()
    with pytest.raises(SendFailed, match="timed out after 2s"):
        sender.post(server.url(), b"{}", {})
    assert time.monotonic() - started < 4


def test_errors_without_an_answer(sender: Sender) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(SendFailed, match="Connection refused"):
        sender.post(f"http://127.0.0.1:{port}/", b"{}", {})


def test_the_address_policy_decides_each_connection(server: Server) -> None:
    strict = Sender("webhook", 2.0, 1024, policy=Policy.parse(""))
    with pytest.raises(EgressRefused, match="loopback"):
        strict.post(server.url(), b"{}", {})
    assert server.connections == 0


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def test_https_verifies_the_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert_file, key_file = _certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = Server(tls=context)
    try:
        unknown = Sender("webhook", 2.0, 1024, policy=LOOPBACK)
        with pytest.raises(SendFailed, match="CERTIFICATE_VERIFY_FAILED"):
            unknown.post(server.url(), b"{}", {})
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # a private CA, as in a cluster
        trusted = Sender("webhook", 2.0, 1024, policy=LOOPBACK)
        assert [trusted.post(server.url(), b"{}", {}) for _ in range(3)] == [200, 200, 200]
        assert server.connections == 2  # the refused handshake, then one kept-alive connection
        trusted.close()
    finally:
        server.close()


def test_idle_connections_are_closed(server: Server, sender: Sender, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("api_server.webhooks.sender.IDLE_SECONDS", 0.3)
    assert sender.post(server.url(), b"{}", {}) == 200
    time.sleep(1.0)  # the watchdog closes it: the server sees the connection end
    assert sender.post(server.url(), b"{}", {}) == 200
    assert server.connections == 2 and sender._idle[("http", "127.0.0.1", server.port)][0][0].reused is False


def test_interim_answers_http_1_0_and_answers_without_a_length(server: Server, sender: Sender) -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
    old = b"HTTP/1.0 201 Created\r\nContent-Length: 2\r\n\r\nok"
    unsized = b"HTTP/1.1 200 OK\r\n\r\nuntil the end"
    answers = {1: interim, 2: old, 4: unsized}
    # The unsized answer's body ends when the server closes the connection.
    server.answer = lambda conn, n: conn.sendall(answers.get(n, OK)) or n != 4
    assert [sender.post(server.url(), b"{}", {}) for _ in range(5)] == [202, 201, 200, 200, 200]
    # The interim answer kept its connection; HTTP/1.0 and the unsized answer did not.
    assert server.connections == 3


def test_malformed_answers_and_header_injection_fail_the_request(server: Server, sender: Sender) -> None:
    server.answer = lambda conn, n: conn.sendall(b"SMTP ready\r\n\r\n") or True
    with pytest.raises(SendFailed, match="not an HTTP/1.x answer"):
        sender.post(server.url(), b"{}", {})
    server.answer = lambda conn, n: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ncut") and False
    with pytest.raises(SendFailed):
        sender.post(server.url(), b"{}", {})
    with pytest.raises(SendFailed, match="line breaks"):
        sender.post(server.url(), b"{}", {"X-Evil": "a\r\nX-Injected: yes"})
    assert not any(b"X-Injected" in r for r in server.requests)
