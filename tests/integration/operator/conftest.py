"""Fixtures: the emulated Kubernetes API (kmock + k8s_emulator) and the operator under KopfRunner.

The operator's settings are read from the environment, and its timers get their intervals
when the handlers are imported, so the environment is set here, before any import of them.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from k8s_emulator import Emulator  # noqa: E402
from operator_support import METRICS_PORT, NS  # noqa: E402

from tests.support.apiserver import TEST_EGRESS_ALLOW  # noqa: E402

_KUBECONFIG = Path(tempfile.mkdtemp(prefix="kubelabel-op-")) / "kubeconfig"
os.environ.update(
    {
        "KUBECONFIG": str(_KUBECONFIG),
        "KUBELABEL_OPERATOR_KUBECONFIG": str(_KUBECONFIG),
        "KUBELABEL_OPERATOR_STANDALONE": "true",
        "KUBELABEL_OPERATOR_LOG_FORMAT": "plain",
        "KUBELABEL_OPERATOR_LIVENESS_ENDPOINT": "",
        "KUBELABEL_OPERATOR_METRICS_PORT": str(METRICS_PORT),
        "KUBELABEL_OPERATOR_METRICS_HOST": "127.0.0.1",
        "KUBELABEL_OPERATOR_IMAGE": "kubelabel:test",
        "KUBELABEL_OPERATOR_RESYNC_INTERVAL_SECONDS": "2",
        "KUBELABEL_OPERATOR_STATS_INTERVAL_SECONDS": "1",
        "KUBELABEL_OPERATOR_ML_CHECK_INTERVAL_SECONDS": "1",
        "KUBELABEL_OPERATOR_HTTP_TIMEOUT_SECONDS": "2",
        # The emulated project APIs and ML backends listen on 127.0.0.1: allowed through the
        # documented setting (the whole suite's value, which includes the operator's loopback).
        "KUBELABEL_EGRESS_ALLOW": TEST_EGRESS_ALLOW,
    }
)

from kopf.testing import KopfRunner  # noqa: E402
from kubelabel_operator.k8s import K8s, load_connection  # noqa: E402
from kubelabel_operator.runner import kopf_args  # noqa: E402
from kubelabel_operator.settings import get_settings  # noqa: E402


def write_kubeconfig(path: Path, server: str) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kmock", "cluster": {"server": server}}],
                "users": [{"name": "kmock", "user": {"token": "test-token"}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock", "namespace": NS}}],
                "current-context": "kmock",
            }
        )
    )


@pytest.fixture
async def kube() -> AsyncIterator[Emulator]:
    """A fresh emulated API server on 127.0.0.1; the shared kubeconfig points at it."""
    async with Emulator() as emulator, kmock.Server(emulator) as server:
        write_kubeconfig(_KUBECONFIG, str(server.url).rstrip("/"))
        yield emulator


@pytest.fixture
async def client(kube: Emulator) -> AsyncIterator[K8s]:
    k8s = K8s(load_connection(str(_KUBECONFIG)))
    yield k8s
    await k8s.aclose()


@pytest.fixture
async def operator(kube: Emulator) -> AsyncIterator[KopfRunner]:
    """The real operator (Kopf in a thread) watching the `default` namespace.

    It is stopped from a worker thread: the emulated API runs on this test's event loop, which
    must keep answering while the operator shuts down. Stopped from the loop's own thread, the
    loop stood still, the operator's last requests got no answer, and once in a while the
    shutdown outlasted KopfRunner's 30 s ("The operator didn't stop, still running").
    """
    get_settings.cache_clear()
    args = kopf_args([NS], False, get_settings())
    runner = KopfRunner(args, timeout=30)
    runner.__enter__()
    try:
        yield runner
    finally:
        await asyncio.to_thread(runner.__exit__, None, None, None)
        get_settings.cache_clear()


@pytest.fixture
def example() -> Callable[[str], list[dict[str, Any]]]:
    root = Path(__file__).resolve().parents[3] / "manifests" / "examples"

    def load(name: str) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all((root / name).read_text()) if d]

    return load
