"""The outbound-address policy (api_server.common.egress) against address forms, rebinding and redirects.

Names other than `localhost` resolve through a stand-in resolver; connections go only to
servers of this test on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from api_server.common import egress
from api_server.common.egress import EgressRefused, EgressSettings, Policy

NOTHING = Policy.parse("")
DEFAULT = Policy.parse(egress.DEFAULT_ALLOW)
LOOPBACK = Policy.parse("*:loopback")

# Names of the stand-in resolver.
NAMES = {
    "intranet.test": ["10.1.2.3"],
    "metadata.test": ["169.254.169.254"],
    "mixed.test": ["93.184.216.34", "10.0.0.7"],  # one public, one private answer: refused when private is
    "mapped.test": ["::ffff:169.254.169.254"],
    "public.test": ["93.184.216.34"],
}


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names in NAMES resolve to their addresses; the rest (localhost, numeric forms) as the system does."""
    asked: list[str] = []
    real = egress._getaddrinfo

    def fake(host: str, port: int) -> list[Any]:
        asked.append(host)
        if host in NAMES:
            return [(0, socket.SOCK_STREAM, 0, "", (ip, port)) for ip in NAMES[host]]
        return real(host, port)

    monkeypatch.setattr(egress, "_getaddrinfo", fake)
    return asked


# (url, reason expected in the refusal) for webhooks' default policy (private allowed).
ALWAYS_REFUSED = [
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://metadata.test/", "link-local"),
    ("http://2852039166/", "link-local"),  # decimal 169.254.169.254
    ("http://0xA9FEA9FE/", "link-local"),  # hex
    ("http://0251.0376.0251.0376/", "link-local"),  # octal
    ("http://[::ffff:169.254.169.254]/", "IPv6 form of 169.254.169.254"),  # IPv4-mapped
    ("http://mapped.test/", "IPv6 form of 169.254.169.254"),
    ("http://[::ffff:127.0.0.1]/", "IPv6 form of 127.0.0.1"),
    ("http://[::ffff:10.0.0.1]/", "IPv6 form of 10.0.0.1"),  # even where private ranges are allowed
    ("http://[64:ff9b::a9fe:a9fe]/", "IPv6 form of 169.254.169.254"),  # NAT64
    ("http://[64:ff9b::7f00:1]/", "IPv6 form of 127.0.0.1"),
    ("http://[64:ff9b:1::a9fe:a9fe]/", "local-use NAT64"),
    ("http://[2002:a9fe:a9fe::1]/", "IPv6 form of 169.254.169.254"),  # 6to4
    ("http://[::a9fe:a9fe]/", "IPv6 form of 169.254.169.254"),  # IPv4-compatible
    ("http://[fe80::1]/", "link-local"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://192.0.2.10/", "non-public"),  # documentation range
    ("http://localhost/", "loopback"),
    ("http://127.0.0.2/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("file:///etc/passwd", "only http and https"),
    ("gopher://127.0.0.1:6379/_INFO", "only http and https"),
    ("ftp://example.test/", "only http and https"),
]


@pytest.mark.parametrize(("url", "reason"), ALWAYS_REFUSED)
def test_address_forms_are_refused(resolver: list[str], url: str, reason: str) -> None:
    with pytest.raises(EgressRefused) as err:
        egress.check_url(url, "webhook", policy=DEFAULT)
    assert reason in err.value.reason, err.value.reason


@pytest.mark.parametrize(
    ("url", "kind", "policy", "allowed"),
    [
        ("http://intranet.test/", "import", DEFAULT, False),  # URL import allows nothing non-public
        ("http://intranet.test/", "webhook", DEFAULT, True),
        ("http://intranet.test/", "ml", DEFAULT, True),
        ("http://intranet.test/", "storage", DEFAULT, True),
        ("http://intranet.test/", "operator", DEFAULT, True),
        ("http://[fd00::5]/", "ml", DEFAULT, True),  # unique-local counts as private
        ("http://100.64.0.9/", "storage", DEFAULT, True),  # shared address space (CGNAT) too
        ("http://mixed.test/", "import", DEFAULT, False),  # every resolved address is checked
        ("http://mixed.test/", "webhook", NOTHING, False),
        ("http://localhost/", "ml", DEFAULT, False),  # loopback is never a default
        ("http://localhost/", "ml", LOOPBACK, True),
        ("http://public.test/", "import", NOTHING, True),
        ("http://93.184.216.34/", "import", NOTHING, True),
        ("http://[64:ff9b::5db8:d822]/", "import", NOTHING, True),  # NAT64 of a public address
    ],
)
def test_each_kind_allows_what_it_is_told(resolver: list[str], url: str, kind: str, policy: Policy, allowed: bool):
    if allowed:
        egress.check_url(url, kind, policy=policy)
    else:
        with pytest.raises(EgressRefused):
            egress.check_url(url, kind, policy=policy)


def test_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBELABEL_EGRESS_ALLOW", raising=False)  # the suite's own value
    monkeypatch.delenv("KUBELABEL_WEBHOOK_ALLOW_PRIVATE", raising=False)
    assert Policy.from_settings(EgressSettings()).allow == DEFAULT.allow
    both = Policy.parse("import:private+loopback, ml:loopback")
    assert both.allowed("import") == {"private", "loopback"} and both.allowed("ml") == {"loopback"}
    assert both.allowed("webhook") == frozenset()
    assert Policy.parse("*:loopback,webhook:private").allowed("webhook") == {"private", "loopback"}
    assert Policy.parse("none").allowed("operator") == frozenset()
    for bad in ("ml", "ml:public", "mail:private", "ml:private+everything"):
        with pytest.raises(ValueError, match="KUBELABEL_EGRESS_ALLOW"):
            Policy.parse(bad)
    # KUBELABEL_WEBHOOK_ALLOW_PRIVATE, the webhooks' older switch, still decides for webhooks.
    legacy = Policy.from_settings(EgressSettings(KUBELABEL_WEBHOOK_ALLOW_PRIVATE=False))
    assert legacy.allowed("webhook") == frozenset() and legacy.allowed("ml") == {"private"}


def test_a_name_that_does_not_resolve_passes_only_when_told(resolver: list[str]) -> None:
    egress.check_url("http://later.invalid/", "ml", policy=DEFAULT, unresolved_ok=True)
    with pytest.raises(EgressRefused, match="does not resolve"):
        egress.check_url("http://later.invalid/", "ml", policy=DEFAULT)


# --- real connections to a local server ------------------------------------------------------------


class _Server:
    def __init__(self) -> None:
        self.hits: list[tuple[str, str | None]] = []  # (path, Host header)
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.drip = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.hits.append((self.path, self.headers.get("Host")))
                status, headers, body = outer.routes.get(self.path, (200, {}, b"ok"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.drip:
                    for i in range(len(body)):
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(0.05)
                else:
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


def test_the_connection_goes_to_the_checked_address(resolver: list[str], server: _Server, monkeypatch) -> None:
    """DNS rebinding: the first answer is checked and connected to; a second lookup never happens."""
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])

    def rebinding(host: str, port: int) -> list[Any]:
        resolver.append(host)
        return [(0, socket.SOCK_STREAM, 0, "", (ip, port)) for ip in next(answers)]

    monkeypatch.setattr(egress, "_getaddrinfo", rebinding)
    with egress.client("ml", timeout=5, policy=LOOPBACK) as http:
        response = http.get(f"http://rebind.test:{server.port}/x")
    assert response.status_code == 200
    assert server.hits == [("/x", f"rebind.test:{server.port}")]  # the URL's host stays in the Host header
    assert resolver == ["rebind.test"]  # one lookup: checked and connected to the same address


def test_a_check_followed_by_a_rebound_connection_is_refused(resolver: list[str], server: _Server, monkeypatch):
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])
    monkeypatch.setattr(
        egress,
        "_getaddrinfo",
        lambda host, port: [(0, socket.SOCK_STREAM, 0, "", (ip, port)) for ip in next(answers)],
    )
    url = f"http://rebind.test:{server.port}/x"
    egress.check_url(url, "ml", policy=LOOPBACK)  # save time: the name pointed at an allowed address
    with egress.client("ml", timeout=5, policy=LOOPBACK) as http, pytest.raises(EgressRefused, match="link-local"):
        http.get(url)  # call time: it now points at the metadata endpoint
    assert server.hits == []


def test_loopback_not_allowed_is_refused_before_connecting(server: _Server) -> None:
    with egress.client("webhook", timeout=5, policy=DEFAULT) as http, pytest.raises(EgressRefused, match="loopback"):
        http.get(f"http://127.0.0.1:{server.port}/")
    with pytest.raises(EgressRefused, match="loopback"):
        egress.download(
            f"http://localhost:{server.port}/",
            bytearray().extend,
            "import",
            max_bytes=10,
            max_seconds=5,
            policy=DEFAULT,
        )
    assert server.hits == []


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::ffff:127.0.0.1]:{port}/", "IPv6 form of 127.0.0.1"),
        ("http://0xA9FEA9FE/", "link-local"),
        ("gopher://127.0.0.1:6379/_INFO", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
    ],
)
def test_every_redirect_hop_is_checked(server: _Server, location: str, reason: str) -> None:
    # Loopback is allowed so the first hop reaches this test's server; the hop it redirects to
    # is refused all the same (an IPv6 form of loopback never passes, whatever is allowed).
    server.routes["/tasks.json"] = (302, {"Location": location.format(port=server.port)}, b"")
    out = bytearray()
    with pytest.raises(EgressRefused) as err:
        egress.download(
            f"http://127.0.0.1:{server.port}/tasks.json",
            out.extend,
            "import",
            max_bytes=100,
            max_seconds=5,
            policy=LOOPBACK,
        )
    assert reason in err.value.reason
    assert [path for path, _ in server.hits] == ["/tasks.json"]


def test_redirects_are_followed_a_few_times(server: _Server) -> None:
    server.routes["/a"] = (302, {"Location": "/b"}, b"")
    server.routes["/b"] = (301, {"Location": f"http://localhost:{server.port}/c"}, b"")
    server.routes["/c"] = (200, {}, b"[1, 2]")
    out = bytearray()
    url = f"http://127.0.0.1:{server.port}/a"
    assert egress.download(url, out.extend, "import", max_bytes=100, max_seconds=5, policy=LOOPBACK) == 6
    assert bytes(out) == b"[1, 2]"
    server.routes["/loop"] = (302, {"Location": "/loop"}, b"")
    with pytest.raises(egress.FetchFailed, match="more than 5 redirects"):
        egress.download(
            f"http://127.0.0.1:{server.port}/loop", out.extend, "import", max_bytes=100, max_seconds=5, policy=LOOPBACK
        )


def test_every_fetch_is_capped_in_size_and_time(server: _Server) -> None:
    server.routes["/big"] = (200, {}, b"x" * 5000)
    url = f"http://127.0.0.1:{server.port}/big"
    with pytest.raises(egress.ResponseTooLarge):
        egress.download(url, bytearray().extend, "import", max_bytes=1000, max_seconds=5, policy=LOOPBACK)
    limits = egress.Limits(max_bytes=1000)
    with egress.client("ml", timeout=5, limits=limits, policy=LOOPBACK) as http, pytest.raises(egress.ResponseTooLarge):
        http.get(url)
    server.routes["/slow"] = (200, {}, b"x" * 40)  # 40 bytes, one each 50 ms: 2 s in all
    server.drip = True
    started = time.monotonic()
    with pytest.raises(egress.FetchFailed, match="longer than 0.5s"):
        egress.download(
            f"http://127.0.0.1:{server.port}/slow",
            bytearray().extend,
            "import",
            max_bytes=100,
            max_seconds=0.5,
            policy=LOOPBACK,
        )
    assert time.monotonic() - started < 1.5


async def test_the_async_client_pins_and_refuses(server: _Server) -> None:
    async with egress.async_client("operator", timeout=5, policy=LOOPBACK) as http:
        assert (await http.get(f"http://localhost:{server.port}/")).status_code == 200
    async with egress.async_client("operator", timeout=5, policy=DEFAULT) as http:
        with pytest.raises(EgressRefused, match="loopback"):
            await http.get(f"http://localhost:{server.port}/")
    assert len(server.hits) == 1


def test_environment_proxies_are_not_used(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy would open the connection the policy cannot see: egress clients ignore HTTP(S)_PROXY."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    with egress.client("ml", timeout=5, policy=LOOPBACK) as http:
        assert http.get(f"http://127.0.0.1:{server.port}/").status_code == 200
    with httpx.Client(timeout=5) as plain, pytest.raises(httpx.ConnectError):
        plain.get(f"http://127.0.0.1:{server.port}/")  # what an ordinary client would do
