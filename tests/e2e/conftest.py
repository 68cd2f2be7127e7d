"""e2e on a real kind cluster: only with KUBELABEL_E2E=1 and a working Docker engine; skipped otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from e2e_support import CLUSTER, IMAGE, ROOT, run  # noqa: E402


def _why_not() -> str | None:
    if os.environ.get("KUBELABEL_E2E") != "1":
        return "e2e tests need KUBELABEL_E2E=1 (and Docker, kind, kubectl): see docs/operator.md"
    for tool in ("docker", "kind", "kubectl"):
        if shutil.which(tool) is None:
            return f"e2e tests need `{tool}` on PATH"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "e2e tests need a working Docker engine (`docker info` failed)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _why_not()
    if reason is None:
        return
    for item in items:
        if item.path.is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def kind_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A kind cluster with the image built from this tree and the operator installed from manifests/base."""
    kubeconfig = str(tmp_path_factory.mktemp("kind") / "kubeconfig")
    created = CLUSTER not in run("kind", "get", "clusters").stdout.split()
    if created:
        run("kind", "create", "cluster", "--name", CLUSTER, "--kubeconfig", kubeconfig, "--wait", "120s")
    else:
        run("kind", "export", "kubeconfig", "--name", CLUSTER, "--kubeconfig", kubeconfig)
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    run("docker", "build", "-t", IMAGE, str(ROOT))
    run("kind", "load", "docker-image", IMAGE, "--name", CLUSTER)
    overlay = tmp_path_factory.mktemp("overlay")
    (overlay / "kustomization.yaml").write_text(
        f"resources: [{ROOT / 'manifests' / 'base'}]\n"
        f"images: [{{name: ghcr.io/kubelabel/kubelabel, newName: {IMAGE.rsplit(':', 1)[0]}, newTag: e2e}}]\n"
        "patches:\n"
        "  - target: {kind: Deployment, name: kubelabel-operator}\n"
        "    patch: |-\n"
        "      - op: replace\n"
        "        path: /spec/template/spec/containers/0/env/0/value\n"
        f"        value: {IMAGE}\n"
    )
    run("kubectl", "apply", "--server-side", "-k", str(overlay), env=env)
    run(
        "kubectl", "-n", "kubelabel-system", "rollout", "status", "deploy/kubelabel-operator", "--timeout=180s", env=env
    )
    try:
        yield env
    finally:
        if created and os.environ.get("KUBELABEL_E2E_KEEP") != "1":
            run("kind", "delete", "cluster", "--name", CLUSTER, check=False)
