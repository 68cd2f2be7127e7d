"""The one outbound-address policy: where the API server, its jobs and the operator may connect.

Every call to a user-given address (URL import, webhooks, ML backends, storage endpoints, the
bundled model server's task source, the operator's calls) goes through this module:

- `check_url` resolves the host and checks every address it resolves to (save time and call time);
- `client` / `async_client` build httpx clients whose transport resolves, checks and connects to
  the checked address itself (the URL's host stays in the Host header and in TLS SNI and
  certificate checks), so a DNS answer that changes between check and connect cannot slip
  through; their responses are capped in size and total time;
- `download` follows redirects by hand, checking each hop.

Always refused: non-http(s) schemes, link-local (cloud metadata such as 169.254.169.254),
multicast, unspecified, reserved and other non-public ranges, and every IPv4-embedding IPv6 form
(IPv4-mapped, IPv4-compatible, 6to4, NAT64) of a non-public IPv4 address. Private ranges and
loopback are refused unless KUBELABEL_EGRESS_ALLOW allows them for the kind of target.

This module imports nothing else of the API server: the operator shares it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import IO, Any, Literal
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Kind = Literal["import", "webhook", "ml", "storage", "operator"]
KINDS: tuple[str, ...] = ("import", "webhook", "ml", "storage", "operator")
RANGES = ("private", "loopback")
# In-cluster services are the norm for these; a URL import from inside the cluster is not.
DEFAULT_ALLOW = "webhook:private,ml:private,storage:private,operator:private"

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: the IPv4 part's place varies
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765 IPv4-translated
_COMPATIBLE = ipaddress.ip_network("::/96")


class EgressRefused(httpx.TransportError):
    """An address the policy refuses. An httpx transport error, so that callers which already
    handle transport failures never turn a refusal into a crash; callers that can say more
    (a 400 naming the field) catch it first."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class ResponseTooLarge(httpx.TransportError):
    """The answer grew past the byte cap of the client or download."""


class ResponseTooSlow(httpx.TransportError):
    """The answer took longer in total than the client's or download's time limit."""


# --- the setting ---------------------------------------------------------------------------------


class EgressSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KUBELABEL_EGRESS_", extra="ignore", populate_by_name=True)

    # Comma-separated `kind:ranges` (kind: import, webhook, ml, storage, operator or *; ranges:
    # private, loopback or private+loopback). Entries add up; empty or "none" allows neither anywhere.
    allow: str = DEFAULT_ALLOW
    # The webhooks' older switch: true lets webhooks reach private and loopback addresses, false
    # neither; unset leaves KUBELABEL_EGRESS_ALLOW alone.
    webhook_allow_private: bool | None = Field(
        default=None, validation_alias=AliasChoices("KUBELABEL_WEBHOOK_ALLOW_PRIVATE")
    )


@dataclass(frozen=True)
class Policy:
    """What each kind of target may reach beyond public addresses."""

    allow: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def allowed(self, kind: str) -> frozenset[str]:
        if kind not in KINDS:
            raise ValueError(f"unknown kind of outbound target {kind!r}")
        return self.allow.get(kind, frozenset())

    @classmethod
    def parse(cls, value: str) -> Policy:
        allow: dict[str, set[str]] = {k: set() for k in KINDS}
        for entry in (e.strip() for e in value.split(",")):
            if not entry or entry == "none":
                continue
            kind, sep, ranges = entry.partition(":")
            kinds = KINDS if kind.strip() == "*" else (kind.strip(),)
            wanted = {r.strip() for r in ranges.split("+")}
            if not sep or not set(kinds) <= set(KINDS) or not wanted <= set(RANGES):
                raise ValueError(
                    f"KUBELABEL_EGRESS_ALLOW: {entry!r} is not kind:ranges (kind: {', '.join(KINDS)} or *; "
                    "ranges: private, loopback or private+loopback)"
                )
            for k in kinds:
                allow[k] |= wanted
        return cls({k: frozenset(v) for k, v in allow.items()})

    @classmethod
    def from_settings(cls, settings: EgressSettings) -> Policy:
        policy = cls.parse(settings.allow)
        if settings.webhook_allow_private is None:
            return policy
        webhook = frozenset(RANGES) if settings.webhook_allow_private else frozenset()
        return cls({**policy.allow, "webhook": webhook})


@lru_cache
def current_policy() -> Policy:
    """The policy from the environment (read once per process)."""
    return Policy.from_settings(EgressSettings())


# --- classifying addresses -----------------------------------------------------------------------


def _embedded_ipv4(ip: IP) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, -translated, -compatible, 6to4 or NAT64 IPv6 one."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _TRANSLATED or ip in _NAT64 or (ip in _COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(ip: IP, allowed: frozenset[str] = frozenset()) -> str | None:
    """Why `ip` may not be connected to (None when it may), given the ranges allowed."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        # These forms only ever reach IPv4 hosts; one of a non-public address is a way around a block.
        why = refusal(embedded)
        return f"an IPv6 form of {embedded}, {why}" if why else None
    if isinstance(ip, ipaddress.IPv6Address) and ip in _NAT64_LOCAL:
        return "a local-use NAT64 address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_link_local:
        return "a link-local address (such as a cloud metadata endpoint)"
    if ip.is_loopback:
        return None if "loopback" in allowed else "a loopback address"
    if any(ip in net for net in _PRIVATE if net.version == ip.version):
        return None if "private" in allowed else "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved or otherwise non-public address"
    return None


def _getaddrinfo(host: str, port: int) -> list[Any]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def resolve(host: str, port: int) -> list[IP]:
    """Every address `host` resolves to (numeric spellings such as 2852039166 included).

    Raises OSError when the name does not resolve."""
    seen: list[IP] = []
    for info in _getaddrinfo(host, port):
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if ip not in seen:
            seen.append(ip)
    return seen


def checked_addresses(host: str, port: int, kind: str, *, policy: Policy | None = None, url: str = "") -> list[IP]:
    """The addresses of `host` when all of them are allowed for `kind`; EgressRefused otherwise."""
    allowed = (policy or current_policy()).allowed(kind)
    addresses = resolve(host, port)
    for ip in addresses:
        why = refusal(ip, allowed)
        if why is not None:
            raise EgressRefused(url or host, f"{host} resolves to {ip}, {why}: not allowed for {kind} targets")
    return addresses


def _split(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EgressRefused(url, f"not a valid URL ({exc})") from None
    if parts.scheme.lower() not in {"http", "https"}:
        raise EgressRefused(url, "only http and https URLs are allowed")
    if not parts.hostname:
        raise EgressRefused(url, "a host is required")
    return parts.hostname, port or (443 if parts.scheme.lower() == "https" else 80)


def check_url(url: str, kind: str, *, policy: Policy | None = None, unresolved_ok: bool = False) -> None:
    """Refuse (EgressRefused) a URL whose scheme or resolved addresses the policy does not allow.

    `unresolved_ok`: a name that does not resolve yet passes (at save time: an in-cluster
    Service may be created after the webhook or backend that names it; the call checks again).
    """
    host, port = _split(url)
    try:
        checked_addresses(host, port, kind, policy=policy, url=url)
    except OSError as exc:
        if not unresolved_ok:
            raise EgressRefused(url, f"{host} does not resolve ({exc.strerror or exc})") from None


# --- pinned connections --------------------------------------------------------------------------


def connect(host: str, port: int, kind: str, timeout: float, *, policy: Policy | None = None) -> socket.socket:
    """A TCP connection to the first reachable checked address of `host` (for clients below httpx).

    EgressRefused when an address is not allowed; OSError when none resolves or answers."""
    try:
        addresses = checked_addresses(host, port, kind, policy=policy)
    except OSError as exc:
        raise OSError(f"{host} does not resolve ({exc.strerror or exc})") from None
    error: OSError | None = None
    for ip in addresses:
        try:
            sock = socket.create_connection((str(ip), port), timeout=timeout)
        except OSError as exc:
            error = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise error or OSError(f"{host}: no address")


class _PinnedBackend(httpcore.NetworkBackend):
    """Resolves and checks the host at each new connection, then connects to a checked address."""

    def __init__(self, kind: str, policy: Policy | None) -> None:
        self.kind, self.policy = kind, policy
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = checked_addresses(host, port, self.kind, policy=self.policy)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve ({exc})") from None
        error: Exception | None = None
        for ip in addresses:
            try:
                return self._inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error or httpcore.ConnectError(f"{host}: no address")

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not outbound targets")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncPinnedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, kind: str, policy: Policy | None) -> None:
        self.kind, self.policy = kind, policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            addresses = await loop.run_in_executor(
                None, lambda: checked_addresses(host, port, self.kind, policy=self.policy)
            )
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve ({exc})") from None
        error: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error or httpcore.ConnectError(f"{host}: no address")

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not outbound targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@dataclass(frozen=True)
class Limits:
    """Caps on one response: bytes read, and seconds from sending the request to the last byte."""

    max_bytes: int = 64 << 20
    max_seconds: float | None = None


class _CappedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, limits: Limits, url: str) -> None:
        self._inner, self._limits, self._url = inner, limits, url
        self._deadline = time.monotonic() + limits.max_seconds if limits.max_seconds else None

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self._inner:
            size += len(chunk)
            if size > self._limits.max_bytes:
                raise ResponseTooLarge(f"{self._url}: the answer is larger than {self._limits.max_bytes} bytes")
            if self._deadline is not None and time.monotonic() > self._deadline:
                raise ResponseTooSlow(f"{self._url}: the answer took longer than {self._limits.max_seconds:g}s")
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _AsyncCappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, limits: Limits, url: str) -> None:
        self._inner, self._limits, self._url = inner, limits, url
        self._deadline = time.monotonic() + limits.max_seconds if limits.max_seconds else None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self._inner:
            size += len(chunk)
            if size > self._limits.max_bytes:
                raise ResponseTooLarge(f"{self._url}: the answer is larger than {self._limits.max_bytes} bytes")
            if self._deadline is not None and time.monotonic() > self._deadline:
                raise ResponseTooSlow(f"{self._url}: the answer took longer than {self._limits.max_seconds:g}s")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def _redacted(url: httpx.URL) -> str:
    return str(url.copy_with(username=None, password=None, query=None))


class PinnedTransport(httpx.HTTPTransport):
    """httpx transport that connects only to addresses the policy allows for `kind`, capped by `limits`."""

    def __init__(self, kind: str, *, policy: Policy | None = None, limits: Limits | None = None, **kwargs: Any):
        Policy().allowed(kind)  # an unknown kind fails here, not at the first connection
        super().__init__(**kwargs)  # SSL_CERT_FILE/SSL_CERT_DIR still apply (private CAs)
        # httpcore takes its network backend only at pool creation; httpx does not pass one on.
        self._pool._network_backend = _PinnedBackend(kind, policy)
        self.limits = limits or Limits()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _CappedStream(response.stream, self.limits, _redacted(request.url))
        return response


class AsyncPinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, kind: str, *, policy: Policy | None = None, limits: Limits | None = None, **kwargs: Any):
        Policy().allowed(kind)
        super().__init__(**kwargs)  # SSL_CERT_FILE/SSL_CERT_DIR still apply (private CAs)
        self._pool._network_backend = _AsyncPinnedBackend(kind, policy)
        self.limits = limits or Limits()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _AsyncCappedStream(response.stream, self.limits, _redacted(request.url))
        return response


def client(
    kind: str,
    *,
    timeout: float | httpx.Timeout,
    limits: Limits | None = None,
    policy: Policy | None = None,
    **kwargs: Any,
) -> httpx.Client:
    """An httpx client for `kind` targets: pinned, checked connections; no redirects; no proxies
    from the environment (a proxy would make the connection the policy cannot see)."""
    return httpx.Client(
        timeout=timeout,
        transport=PinnedTransport(kind, policy=policy, limits=limits),
        follow_redirects=False,
        trust_env=False,
        **kwargs,
    )


def async_client(
    kind: str,
    *,
    timeout: float | httpx.Timeout,
    limits: Limits | None = None,
    policy: Policy | None = None,
    **kwargs: Any,
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=timeout,
        transport=AsyncPinnedTransport(kind, policy=policy, limits=limits),
        follow_redirects=False,
        trust_env=False,
        **kwargs,
    )


# --- downloads -----------------------------------------------------------------------------------


class FetchFailed(Exception):
    """A download that did not succeed: an error status, or a transport failure (message says which)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


MAX_REDIRECTS = 5


def download(
    url: str,
    write: Callable[[bytes], Any] | IO[bytes],
    kind: str,
    *,
    max_bytes: int,
    max_seconds: float,
    max_redirects: int = MAX_REDIRECTS,
    policy: Policy | None = None,
) -> int:
    """GET `url` into `write` (a callable or a binary file), following at most `max_redirects`
    redirects, each hop checked. Returns the bytes written.

    Raises EgressRefused (a hop the policy refuses), ResponseTooLarge, or FetchFailed.
    """
    sink = write if callable(write) else write.write
    limits = Limits(max_bytes=max_bytes, max_seconds=max_seconds)
    timeout = httpx.Timeout(min(max_seconds, 30.0), connect=min(max_seconds, 10.0))
    current = url
    with client(kind, timeout=timeout, limits=limits, policy=policy) as http:
        for _ in range(max_redirects + 1):
            check_url(current, kind, policy=policy)
            try:
                with http.stream("GET", current) as response:
                    if response.is_redirect:
                        current = urljoin(current, response.headers.get("location", ""))
                        continue
                    if response.status_code >= 400:
                        raise FetchFailed(
                            f"the server answered HTTP {response.status_code}", status_code=response.status_code
                        )
                    size = 0
                    for chunk in response.iter_bytes(1 << 20):
                        size += len(chunk)
                        sink(chunk)
                    return size
            except (EgressRefused, ResponseTooLarge):
                raise
            except ResponseTooSlow as exc:
                raise FetchFailed(str(exc)) from None
            except httpx.HTTPError as exc:
                raise FetchFailed(f"{type(exc).__name__}: {exc}") from None
    raise FetchFailed(f"more than {max_redirects} redirects")
