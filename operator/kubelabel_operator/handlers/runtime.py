"""What every handler needs at hand: the API client, an HTTP client and the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from kubelabel_operator.k8s import K8s
from kubelabel_operator.settings import OperatorSettings


@dataclass
class Runtime:
    k8s: K8s
    http: httpx.AsyncClient
    settings: OperatorSettings


def runtime(memo: Any) -> Runtime:
    rt: Runtime = memo.runtime  # set once at startup (Kopf's memo is untyped)
    return rt
