"""The Kubernetes quick start of docs/install.md, run as a new user would, on a kind cluster.

Runs only with KUBELABEL_E2E=1 on a machine where Docker works (kind, docker, kubectl on PATH; helm
when present, otherwise the chart is rendered with helm-python-sdk and applied server-side). Creates
its own cluster and deletes it at the end unless KUBELABEL_E2E_KEEP=1.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.net import free_port, wait_for_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.environ.get("KUBELABEL_E2E") != "1", reason="end-to-end on kind: set KUBELABEL_E2E=1"),
]

ROOT = Path(__file__).resolve().parents[3]
CLUSTER = os.environ.get("KUBELABEL_E2E_CLUSTER", "kubelabel-e2e")
IMAGE = "ghcr.io/kubelabel/kubelabel:e2e"
NAMESPACE = "kubelabel-system"
PROJECT_NS = "labeling"


def run(*args: str, timeout: float = 600, stdin: str | None = None) -> str:
    result = subprocess.run(
        list(args), cwd=ROOT, capture_output=True, text=True, timeout=timeout, input=stdin, check=False
    )
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def kubectl(*args: str, **kw: object) -> str:
    return run("kubectl", "--context", f"kind-{CLUSTER}", *args, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    for tool in ("kind", "docker", "kubectl"):
        if shutil.which(tool) is None:
            pytest.fail(f"KUBELABEL_E2E=1 but `{tool}` is not on PATH", pytrace=False)
    run("kind", "create", "cluster", "--name", CLUSTER, "--wait", "120s")
    try:
        run("docker", "build", "-t", IMAGE, ".", timeout=1800)
        run("kind", "load", "docker-image", IMAGE, "--name", CLUSTER)
        yield CLUSTER
    finally:
        if os.environ.get("KUBELABEL_E2E_KEEP") != "1":
            run("kind", "delete", "cluster", "--name", CLUSTER)


def helm_install() -> None:
    if shutil.which("helm"):
        run(
            "helm",
            "--kube-context",
            f"kind-{CLUSTER}",
            "install",
            "kubelabel",
            "charts/kubelabel",
            "--namespace",
            NAMESPACE,
            "--create-namespace",
            "--set",
            "image.tag=e2e",
            "--wait",
            "--timeout",
            "5m",
        )
        return
    import helm_python

    rendered = helm_python.Chart.load(str(ROOT / "charts" / "kubelabel")).render(
        {"image": {"tag": "e2e"}}, name="kubelabel", namespace=NAMESPACE, is_install=True
    )
    # What `helm install` applies: every object but the notes and the hooks (the pre-delete Job would run now).
    objects = [
        doc
        for path, text in sorted(rendered.items())
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc and "helm.sh/hook" not in (doc["metadata"].get("annotations") or {})
    ]
    manifests = yaml.safe_dump_all(objects)
    kubectl("create", "namespace", NAMESPACE)
    kubectl("apply", "--server-side", "-f", "-", stdin=manifests)
    kubectl("-n", NAMESPACE, "rollout", "status", "deployment/kubelabel", "--timeout=5m")


def test_quick_start(cluster: str) -> None:
    helm_install()
    crds = kubectl("get", "crd", "-o", "name")
    for kind in ("labelingprojects", "storageconnections", "mlbackends"):
        assert f"{kind}.kubelabel.io" in crds

    kubectl("create", "namespace", PROJECT_NS)
    kubectl("apply", "-n", PROJECT_NS, "-f", "manifests/examples/01-minimal-project.yaml")
    project = yaml.safe_load((ROOT / "manifests" / "examples" / "01-minimal-project.yaml").read_text())
    name = project["metadata"]["name"]
    kubectl("wait", "-n", PROJECT_NS, f"labelingproject/{name}", "--for=condition=Ready", "--timeout=5m")

    token_b64 = kubectl("get", "-n", PROJECT_NS, "secret", f"{name}-admin-token", "-o", "jsonpath={.data.token}")
    token = base64.b64decode(token_b64).decode()
    port = free_port()
    forward = subprocess.Popen(
        ["kubectl", "--context", f"kind-{CLUSTER}", "-n", PROJECT_NS, "port-forward",
         f"svc/{name}-api", f"{port}:8080", "--address", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=30)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/projects/1", headers={"Authorization": f"Token {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
        assert body["title"] == project["spec"]["title"]
    finally:
        forward.terminate()
        forward.wait(timeout=10)

    # Uninstall as a user would: the pre-delete hook removes the project while the operator runs.
    if shutil.which("helm"):
        run("helm", "--kube-context", f"kind-{CLUSTER}", "uninstall", "kubelabel", "-n", NAMESPACE, "--wait")
        deadline = time.monotonic() + 120
        while kubectl("get", "labelingprojects", "-A", "-o", "name").strip():
            assert time.monotonic() < deadline, "projects left behind after helm uninstall"
            time.sleep(2)
