"""The one seam that talks to the Kubernetes API (async, httpx)."""

from kubelabel_operator.k8s.client import ApiError, K8s
from kubelabel_operator.k8s.config import Connection, load_connection
from kubelabel_operator.k8s.resources import Resource

__all__ = ["ApiError", "Connection", "K8s", "Resource", "load_connection"]
