"""Fixtures: the emulated Kubernetes API (kmock + k8s_emulator) and the operator under KopfRunner.

The operator's settings are read from the environment, and its timers get their intervals
when the handlers are imported, so the environment is set here, before any import of them.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from k8s_emulator import Emulator  # noqa: E402
from operator_support import METRICS_PORT, NS  # noqa: E402

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
def operator(kube: Emulator) -> Iterator[KopfRunner]:
    """The real operator (Kopf in a thread) watching the `default` namespace."""
    get_settings.cache_clear()
    args = kopf_args([NS], False, get_settings())
    with KopfRunner(args, timeout=30) as runner:
        yield runner
    get_settings.cache_clear()


@pytest.fixture
def example() -> Callable[[str], list[dict[str, Any]]]:
    root = Path(__file__).resolve().parents[3] / "manifests" / "examples"

    def load(name: str) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all((root / name).read_text()) if d]

    return load
