"""Where deliveries may go: never to link-local addresses (cloud metadata endpoints such as
169.254.169.254), and, with KUBELABEL_WEBHOOK_ALLOW_PRIVATE=false, never to loopback, private or
otherwise non-public ones either.

The host is resolved right before each attempt. (A DNS answer that changes between this check
and the connection is not caught; block egress with a NetworkPolicy where that matters.)
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


def refused_address(url: str, *, allow_private: bool) -> str | None:
    """Why the URL's host may not be called, or None when it may."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return None  # the attempt itself fails and is retried (the name may appear later)
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
            return f"{host} resolves to {ip}, a link-local/multicast address: not allowed"
        if not allow_private and not ip.is_global:
            return f"{host} resolves to {ip}, a non-public address (KUBELABEL_WEBHOOK_ALLOW_PRIVATE=false)"
    return None
