"""Servers for the ML tests: our model server as a real process, and a misbehaving HTTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from kubelabel_model_server.app import create_app
from kubelabel_model_server.settings import ModelServerSettings

from tests.support.net import free_port, wait_for_port
from tests.support.processes import stop_process

REPO = Path(__file__).resolve().parents[3]


@dataclass
class ModelServerProcess:
    """`kubelabel model-server`'s app in its own process (restarts are real process restarts)."""

    port: int
    model_dir: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        code = f"import sys; from kubelabel_model_server.app import serve; sys.exit(serve('127.0.0.1', {self.port}))"
        env = {**os.environ, "MODEL_DIR": str(self.model_dir), "PYTHONPATH": str(REPO), **self.env}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for_port(self.port, timeout=60)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        self.proc = None


@dataclass
class ModelServerThread:
    """The same app served by uvicorn in a thread of the test process (no interpreter start-up)."""

    port: int
    model_dir: Path
    env: dict[str, str]
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        settings = ModelServerSettings(**{"MODEL_DIR": str(self.model_dir), **self.env})
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="model-server", daemon=True)
        self._thread.start()
        wait_for_port(self.port, timeout=60)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        self._server = self._thread = None


ModelServer = ModelServerProcess | ModelServerThread


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    """One model server shared by a module's tests (each test uses its own project id)."""
    server = ModelServerThread(port=free_port(), model_dir=tmp_path_factory.mktemp("model"), env={})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def unused_url() -> str:
    """A URL nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


_project_ids = iter(range(100, 100_000))


@pytest.fixture
def project_id() -> int:
    return next(_project_ids)


@pytest.fixture
def start_model_server(tmp_path: Path) -> Iterator[Callable[..., ModelServer]]:
    """Start a model server (env as keyword arguments); `process=True` for its own process."""
    started: list[ModelServer] = []

    def start(model_dir: Path | None = None, process: bool = False, **env: str) -> ModelServer:
        kind = ModelServerProcess if process else ModelServerThread
        server = kind(port=free_port(), model_dir=model_dir or tmp_path / "model", env=env)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# --- a server that misbehaves on demand -------------------------------------------------


@dataclass
class Behaviour:
    status: int = 200
    body: bytes = b"{}"
    delay_until_released: bool = False  # hold the answer until the test ends
    close_without_answer: bool = False
    fail_first: int = 0  # answer 503 to the first N requests, then behave


@dataclass
class MisbehavingServer:
    port: int
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def on(self, path: str, status: int = 200, body: Any = None, raw: bytes | None = None, **kw: Any) -> None:
        payload = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
        self.behaviours[path] = Behaviour(status=status, body=payload, **kw)


def _handler(server: MisbehavingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _serve(self) -> None:
            path = self.path.split("?")[0]
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            server.hits[path] += 1
            server.headers.append(dict(self.headers))
            server.bodies.append(json.loads(raw) if raw else None)
            behaviour = server.behaviours.get(path, Behaviour(status=404, body=b'{"detail":"not found"}'))
            if behaviour.close_without_answer:
                self.close_connection = True
                self.connection.close()
                return
            if behaviour.delay_until_released:
                server.release.wait(timeout=30)
            status, body = behaviour.status, behaviour.body
            if server.hits[path] <= behaviour.fail_first:
                status, body = 503, b'{"detail":"warming up"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _serve

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up early is what these tests provoke


@pytest.fixture
def misbehaving_server() -> Iterator[MisbehavingServer]:
    state = MisbehavingServer(port=free_port())
    httpd = _QuietServer(("127.0.0.1", state.port), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)
