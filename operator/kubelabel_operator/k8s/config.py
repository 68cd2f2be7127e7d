"""Where the API server is and how to authenticate: in-cluster or from a kubeconfig.

Read at call time (not at import time, unlike `kubernetes.config`'s default location), so
KUBECONFIG set by a test or a wrapper script is honoured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class Connection:
    server: str
    ca_path: str | None = None
    insecure: bool = False
    token: str | None = None
    token_path: str | None = None  # in-cluster: re-read, the kubelet rotates it
    cert_path: str | None = None
    key_path: str | None = None
    default_namespace: str | None = None

    def bearer(self) -> str | None:
        if self.token_path:
            return Path(self.token_path).read_text().strip()
        return self.token


def _in_cluster() -> Connection | None:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    token = SA_DIR / "token"
    if not host or not port or not token.exists():
        return None
    ns_file = SA_DIR / "namespace"
    return Connection(
        server=f"https://{host}:{port}" if ":" not in host else f"https://[{host}]:{port}",
        ca_path=str(SA_DIR / "ca.crt"),
        token_path=str(token),
        default_namespace=ns_file.read_text().strip() if ns_file.exists() else None,
    )


def _from_kubeconfig(path: str | None) -> Connection:
    from kubernetes import client, config

    cfg = client.Configuration()
    config_file = path or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    config.load_kube_config(config_file=config_file.split(os.pathsep)[0], client_configuration=cfg)
    token = None
    auth = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    if auth:
        token = auth.split(" ", 1)[1] if " " in auth else auth
    namespace = None
    try:
        _, active = config.list_kube_config_contexts(config_file=config_file.split(os.pathsep)[0])
        namespace = (active or {}).get("context", {}).get("namespace")
    except Exception:  # noqa: BLE001 - the namespace is only a default
        namespace = None
    return Connection(
        server=cfg.host.rstrip("/"),
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        token=token,
        cert_path=cfg.cert_file,
        key_path=cfg.key_file,
        default_namespace=namespace,
    )


def load_connection(kubeconfig: str | None = None) -> Connection:
    """In-cluster config when running in a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    if kubeconfig is None:
        in_cluster = _in_cluster()
        if in_cluster is not None:
            return in_cluster
    return _from_kubeconfig(kubeconfig)
