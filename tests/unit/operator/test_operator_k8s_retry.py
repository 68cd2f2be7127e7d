"""The Kubernetes client's retries: a dropped connection is tried again, 3 tries in all, then a 503."""

from __future__ import annotations

import asyncio

import pytest
from kubelabel_operator.k8s.client import ApiError, K8s
from kubelabel_operator.k8s.config import Connection
from kubelabel_operator.k8s.resources import Resource


async def _server(drops: int) -> tuple[asyncio.Server, list[int]]:
    """An HTTP server on 127.0.0.1 that closes the first `drops` connections without an answer."""
    seen: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        seen.append(1)
        if len(seen) > drops:
            body = b'{"metadata": {"name": "x"}}'
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n")
            writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0), seen


CM = Resource("", "v1", "configmaps", "ConfigMap")


@pytest.mark.parametrize(("drops", "tries", "outcome"), [(2, 3, "ok"), (3, 3, 503)])
async def test_the_kubernetes_client_tries_three_times_on_dropped_connections(drops: int, tries: int, outcome) -> None:
    server, seen = await _server(drops)
    port = server.sockets[0].getsockname()[1]
    k8s = K8s(Connection(server=f"http://127.0.0.1:{port}"), timeout=5.0)
    try:
        if outcome == "ok":
            assert await k8s.get(CM, "default", "x") == {"metadata": {"name": "x"}}
        else:
            with pytest.raises(ApiError) as failed:
                await k8s.get(CM, "default", "x")
            assert failed.value.status == outcome
        assert len(seen) == tries
    finally:
        await k8s.aclose()
        server.close()
