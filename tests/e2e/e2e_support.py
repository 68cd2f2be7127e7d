"""Helpers of the e2e tests (kind cluster, subprocess)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = os.environ.get("KUBELABEL_E2E_CLUSTER", "kubelabel-e2e")
IMAGE = os.environ.get("KUBELABEL_E2E_IMAGE", "ghcr.io/kubelabel/kubelabel:e2e")


def run(*args: str, check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, text=True, capture_output=True, **kw)  # type: ignore[call-overload]
