"""The operator as a process (`kubelabel operator`), with a ServiceAccount's identity.

Its kubeconfig holds a token of the ServiceAccount that the shipped manifests create and bind, so
the RBAC under test is exactly the one a user installs: a verb missing there fails a test here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from realcluster import Kubectl

from tests.support.net import free_port
from tests.support.processes import stop_process

KUBELABEL = str(Path(sys.executable).parent / "kubelabel")

# The operator's test settings: fast loops, plain logs, no liveness server, loopback targets allowed.
BASE_ENV = {
    "KUBELABEL_OPERATOR_LOG_FORMAT": "plain",
    "KUBELABEL_OPERATOR_LIVENESS_ENDPOINT": "",
    "KUBELABEL_OPERATOR_METRICS_HOST": "127.0.0.1",
    "KUBELABEL_OPERATOR_IMAGE": "kubelabel:e2e",
    "KUBELABEL_OPERATOR_RESYNC_INTERVAL_SECONDS": "3",
    "KUBELABEL_OPERATOR_STATS_INTERVAL_SECONDS": "1",
    "KUBELABEL_OPERATOR_ML_CHECK_INTERVAL_SECONDS": "1",
    "KUBELABEL_OPERATOR_HTTP_TIMEOUT_SECONDS": "3",
}


class OperatorProcess:
    def __init__(
        self,
        identity: Kubectl,
        args: list[str],
        log: Path,
        env: dict[str, str] | None = None,
        standalone: bool = True,
    ) -> None:
        self.identity = identity
        self.args = args
        self.log = log
        self.metrics_port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("KUBELABEL_")},
            **BASE_ENV,
            "KUBECONFIG": str(identity.kubeconfig),
            "KUBELABEL_OPERATOR_KUBECONFIG": str(identity.kubeconfig),
            "KUBELABEL_OPERATOR_METRICS_PORT": str(self.metrics_port),
            "KUBELABEL_OPERATOR_STANDALONE": "true" if standalone else "false",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        self.process = subprocess.Popen(
            [KUBELABEL, "operator", *self.args],
            env=self.env,
            stdout=open(self.log, "ab"),  # noqa: SIM115 - the child keeps it
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye to the peers (a crashed pod)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=20)

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
