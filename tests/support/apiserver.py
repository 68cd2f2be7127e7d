"""A real API server on 127.0.0.1 for tests: uvicorn in a thread, a real database behind it."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from api_server.server import KEEP_ALIVE_SECONDS, build
from api_server.settings import Settings
from tests.support.net import free_port, wait_for_port

ADMIN_TOKEN = "test-admin-token-0123456789"

# The suite's receivers, model servers and storage emulators listen on 127.0.0.1, which the
# product's outbound-address policy refuses by default: allow loopback through its documented
# setting (and private ranges where the product allows them anyway; URL import keeps them refused).
# Set in the environment so the in-process servers and their subprocesses (workers, `kubelabel
# sync`) read the same value.
TEST_EGRESS_ALLOW = (
    "import:loopback,webhook:private+loopback,ml:private+loopback,storage:private+loopback,operator:private+loopback"
)
os.environ["KUBELABEL_EGRESS_ALLOW"] = TEST_EGRESS_ALLOW


@dataclass
class LiveServer:
    backend: str
    database_url: str
    data_dir: Path
    settings: Settings
    app: Any = None
    port: int = 0
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def session_factory(self) -> sessionmaker[Session]:
        return self.app.state.session_factory

    def uvicorn_options(self) -> dict[str, Any]:
        """How uvicorn serves the app: as `kubelabel serve` does (never closing a connection before its clients)."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "log_level": "warning",
            "access_log": False,
            "lifespan": "on",
            "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        }

    def start(self) -> LiveServer:
        self.app = build(self.settings)
        self.port = free_port()
        self._server = uvicorn.Server(uvicorn.Config(self.app, **self.uvicorn_options()))
        self._thread = threading.Thread(target=self._server.run, name=f"api-{self.backend}", daemon=True)
        self._thread.start()
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self.app is not None:
            self.app.state.engine.dispose()

    def client(self, token: str | None = ADMIN_TOKEN, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Token {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=kwargs.pop("timeout", 60), **kwargs)


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "KUBELABEL_DATA_DIR": str(data_dir),
        "KUBELABEL_ADMIN_TOKEN": ADMIN_TOKEN,
        "REDIS_URL": None,
        # Tests change users from other processes (the CLI) and expect the next request to see it.
        "KUBELABEL_AUTH_CACHE_SECONDS": 0,
    }
    values.update(overrides)
    return Settings(**values)
