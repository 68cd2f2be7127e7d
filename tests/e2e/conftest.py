"""The real-cluster tier: kube-apiserver, etcd, kube-controller-manager, kube-scheduler and kwok.

The control plane comes from tests/cluster (built from Go modules by `make cluster-build`, which
`make test` runs). This session uses, in order: the cluster named by KUBELABEL_TEST_KUBECONFIG, one
already started by `make cluster` (left running at the end), or one it starts itself (stopped at
the end). Without the built programs (no Go) these tests skip with the reason; in CI they fail.
The CRDs of crds/ are applied server-side once per session; each test works in its own namespace.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from installs import delete_objects  # noqa: E402
from operator_process import OperatorProcess  # noqa: E402
from realcluster import ROOT, Cluster, Kubectl, eventually  # noqa: E402

from tests.support.services import unavailable  # noqa: E402

CLUSTER_SCRIPT = ROOT / "tests" / "cluster" / "cluster.py"
SYSTEM_NS = "kubelabel-system"


def _cluster_module():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(CLUSTER_SCRIPT.parent))
    import cluster  # type: ignore[import-not-found]

    return cluster


def _script(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CLUSTER_SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    module = _cluster_module()
    bins = module.bin_dir()
    if not (bins / "kubectl").exists():
        unavailable(f"the control plane is not built ({bins}): run `make cluster-build` (needs Go 1.26)")
    workdir = tmp_path_factory.mktemp("cluster")
    given = os.environ.get("KUBELABEL_TEST_KUBECONFIG")
    started = False
    if given:
        kubeconfig = Path(given)
    else:
        status = _script("status")
        if status.returncode == 0:
            kubeconfig = Path(status.stdout.strip().splitlines()[-1])
        else:
            up = _script("up")
            if up.returncode != 0:
                pytest.fail(f"the control plane did not start:\n{up.stderr[-4000:]}", pytrace=False)
            kubeconfig = Path(up.stdout.strip().splitlines()[-1])
            started = True
    admin = Cluster(bins / "kubectl", kubeconfig, workdir)
    admin("apply", "--server-side", "--field-manager=kubelabel-e2e", "--force-conflicts", "-f", str(ROOT / "crds"))
    for crd in ("labelingprojects", "storageconnections", "mlbackends"):
        admin("wait", "--for=condition=Established", f"crd/{crd}.kubelabel.io", "--timeout=60s")
    try:
        yield admin
    finally:
        if started:
            _script("down")


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = cluster.new_namespace()
    eventually(lambda: cluster.get("serviceaccount", "default", name), what="default ServiceAccount")
    yield name
    cluster.delete_namespace(name)


@pytest.fixture(scope="module")
def operator_identity(cluster: Cluster) -> Iterator[Kubectl]:
    """manifests/base's ServiceAccount and cluster-wide RBAC (its Deployment too: kwok keeps it idle)."""
    docs = cluster.kustomize(ROOT / "manifests" / "base")
    cluster.apply(docs)
    identity = cluster.identity(SYSTEM_NS, "kubelabel-operator")
    yield identity
    delete_objects(cluster, [d for d in docs if d["kind"] in {"ClusterRole", "ClusterRoleBinding", "Deployment"}])


@pytest.fixture
def operator_env() -> dict[str, str]:
    """Extra settings of the `operator` fixture's process (a test module may override this fixture)."""
    return {}


@pytest.fixture
def operator(
    operator_identity: Kubectl, namespace: str, operator_env: dict[str, str], tmp_path: Path
) -> Iterator[OperatorProcess]:
    """The operator with manifests/base's identity and RBAC, watching the test's namespace."""
    proc = OperatorProcess(operator_identity, ["--namespace", namespace], tmp_path / "operator.log", env=operator_env)
    with proc:
        yield proc
    print(proc.output()[-6000:])
