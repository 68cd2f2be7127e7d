"""Small network helpers for tests: free ports and waiting for a server."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_pick = random.SystemRandom()  # whatever seeds `random`, parallel test workers pick apart


def free_port() -> int:
    """A port free now, from below the kernel's ephemeral range.

    A port the kernel hands out for `bind(0)` comes from the range it also takes source ports of
    outgoing connections from, and the tests open many: one could take the port between this
    check and the server's bind (an operator test once lost its metrics port that way). Ports
    below that range are only ever taken by listeners.
    """
    try:
        ephemeral_low = int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 0
    if ephemeral_low > 20_000:
        for _ in range(200):
            port = _pick.randint(ephemeral_low - 12_000, ephemeral_low - 1)
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:  # elsewhere: whatever the kernel picks
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")
