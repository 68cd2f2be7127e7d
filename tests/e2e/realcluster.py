"""The real control plane of tests/cluster, as the e2e tests use it: kubectl, objects, identities."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 60.0, interval: float = 0.25, what: str = "") -> T:
    """wait_until at a pace the API server and kubectl keep up with (many checks start a process)."""
    return wait_until(check, what or "condition", timeout, interval=interval)


def condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return dict(cond)
    return {}


def ready(obj: dict[str, Any] | None) -> bool:
    return condition(obj, "Ready").get("status") == "True"


def ready_at_generation(obj: dict[str, Any] | None) -> bool:
    """Ready, and for the spec as it is now (not an older generation's verdict)."""
    return ready(obj) and obj is not None and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]


def docs_of(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


class Kubectl:
    """kubectl at the server's version, with one identity (a kubeconfig)."""

    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}{result.stdout}"
            )
        return result

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        return self.run(*args, stdin=stdin).stdout

    def apply(
        self, objects: str | Iterable[dict[str, Any]], namespace: str | None = None, server_side: bool = True
    ) -> str:
        text = objects if isinstance(objects, str) else yaml.safe_dump_all(list(objects))
        args = ["apply", "-f", "-"]
        if server_side:
            args += ["--server-side", "--field-manager=kubelabel-e2e", "--force-conflicts"]
        if namespace:
            args += ["-n", namespace]
        return self(*args, stdin=text)

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        args = ["get", resource, name, "-o", "json"] + (["-n", namespace] if namespace else [])
        result = self.run(*args, check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr or "not found" in result.stderr:
                return None
            raise AssertionError(f"kubectl get {resource} {name}: {result.stderr}")
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def list(self, resource: str, namespace: str | None = None, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", resource, "-o", "json"] + (["-n", namespace] if namespace else ["-A"])
        if selector:
            args += ["-l", selector]
        return json.loads(self(*args))["items"]  # type: ignore[no-any-return]


class Cluster(Kubectl):
    """The admin's view of the cluster, and the means to make other identities."""

    def __init__(self, binary: Path, kubeconfig: Path, workdir: Path) -> None:
        super().__init__(binary, kubeconfig)
        self.workdir = workdir
        config = yaml.safe_load(kubeconfig.read_text())
        self.server = config["clusters"][0]["cluster"]["server"]
        self.ca_file = config["clusters"][0]["cluster"]["certificate-authority"]

    def new_namespace(self, prefix: str = "e2e") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self("create", "namespace", name)
        return name

    def kustomize(self, folder: Path) -> list[dict[str, Any]]:
        return docs_of(self("kustomize", str(folder)))

    def identity(self, namespace: str, service_account: str, duration: str = "2h") -> Kubectl:
        """kubectl as a ServiceAccount, with a token from the TokenRequest API (what a pod would get)."""
        token = self("create", "token", service_account, "-n", namespace, f"--duration={duration}").strip()
        path = self.workdir / f"{namespace}.{service_account}.{uuid.uuid4().hex[:4]}.kubeconfig"
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {"name": "c", "cluster": {"server": self.server, "certificate-authority": self.ca_file}}
                    ],
                    "users": [{"name": service_account, "user": {"token": token}}],
                    "contexts": [
                        {"name": "c", "context": {"cluster": "c", "user": service_account, "namespace": namespace}}
                    ],
                    "current-context": "c",
                }
            )
        )
        return Kubectl(self.binary, path)

    def delete_namespace(self, name: str) -> None:
        self.run("delete", "namespace", name, "--wait=false", check=False)
