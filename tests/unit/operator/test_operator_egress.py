"""The operator's HTTP client (project APIs, external MLBackend spec.url) obeys the outbound-address policy."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubelabel_operator.reconcilers import mlbackend, project_api

from api_server.common.egress import DEFAULT_ALLOW, Policy

DEFAULT = Policy.parse(DEFAULT_ALLOW)  # the product's default: private ranges, never loopback
LOOPBACK = Policy.parse("operator:loopback")


@pytest.fixture
def backend() -> Iterator[tuple[str, list[str]]]:
    """An ML backend and project API on 127.0.0.1 answering every call; yields (url, paths called)."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            hits.append(self.path)
            body = json.dumps({"status": "UP", "model_version": "v3", "task_number": 4}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer  # noqa: N815

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


async def test_health_check_of_an_external_backend(backend: tuple[str, list[str]]) -> None:
    url, hits = backend
    async with project_api.http_client(5, policy=DEFAULT) as http:
        health = await mlbackend.check_backend(http, url, 5, None, None)
        assert not health.ok and "refused" in health.message and "loopback" in health.message
        mapped = url.replace("127.0.0.1", "[::ffff:169.254.169.254]")
        health = await mlbackend.check_backend(http, mapped, 5, None, None)
        assert not health.ok and "IPv6 form of 169.254.169.254" in health.message
    assert hits == []
    async with project_api.http_client(5, policy=LOOPBACK) as http:
        health = await mlbackend.check_backend(http, url, 5, None, None)
    assert health.ok and health.model_version == "v3" and hits == ["/health", "/setup"]


async def test_project_api_calls(backend: tuple[str, list[str]]) -> None:
    url, hits = backend
    async with project_api.http_client(5, policy=DEFAULT) as http:
        with pytest.raises(project_api.ProjectApiError, match="refused: .*loopback"):
            await project_api.project_stats(http, url, "token")
        with pytest.raises(project_api.ProjectApiError, match="link-local"):
            await project_api.project_stats(http, "http://0xA9FEA9FE", "token")
    assert hits == []
    async with project_api.http_client(5, policy=LOOPBACK) as http:
        assert (await project_api.project_stats(http, url, "token"))["tasks"] == 4
