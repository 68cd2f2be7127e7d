"""Bench (by hand): N LabelingProjects applied at once, on the emulated API and on a real control plane.

    .venv/bin/python bench/operator.py [--projects 500]             the emulated API only
    .venv/bin/python bench/operator.py [--projects 500] --cluster   the emulated API, then the real
                                                                     cluster of tests/cluster, compared

The emulated API is tests/integration/operator/mock_server.py; the real cluster is the one
`make cluster` started (tests/cluster/cluster.py status, or KUBELABEL_TEST_KUBECONFIG): kube-apiserver,
etcd, the controllers and kwok, whose fake nodes run the pods, so projects really become Ready.
`kubelabel operator` runs as a process watching all namespaces (never run this while e2e tests
use the cluster). The bench creates the projects concurrently and prints the time until every
project has its Deployment and Service, a status with conditions, and (real cluster only) the
Ready condition, plus the operator's peak RSS. On the cluster it adds, for the run only, fake
nodes and a ServiceCIDR big enough for N projects, and removes them after (the cluster's own
provisioner gives each project's claim a volume).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.net import free_port  # noqa: E402

MOCK = ROOT / "tests" / "integration" / "operator" / "mock_server.py"
CLUSTER_SCRIPT = ROOT / "tests" / "cluster" / "cluster.py"
CONFIG = '<View><Text name="text" value="$text"/><Choices name="c" toName="text"><Choice value="A"/></Choices></View>'
PODS_PER_NODE = 110  # tests/cluster's fake nodes
BENCH_CIDR = "10.97.0.0/20"  # next to the cluster's 10.96.0.0/24 (too small for hundreds of Services)


def project(i: int, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubelabel.io/v1alpha1",
        "kind": "LabelingProject",
        "metadata": {"name": f"bench-{i:04d}", "namespace": namespace},
        "spec": {"title": f"Bench {i}", "labelConfig": {"inline": CONFIG}},
    }


@dataclass
class Figures:
    target: str
    projects: int
    created: float
    children: float
    statuses: float
    ready: float | None
    idle_rss: int
    peak_rss: int

    def print(self) -> None:
        n = self.projects
        print(f"-- {self.target}")
        print(f"projects:                           {n}")
        print(f"created (API calls) in:             {self.created:.1f} s")
        print(f"all children (Deployment+Service):  {self.children:.1f} s  ({n / self.children:.1f} projects/s)")
        print(f"all with status conditions:         {self.statuses:.1f} s  ({n / self.statuses:.1f} projects/s)")
        if self.ready is not None:
            print(f"all Ready:                          {self.ready:.1f} s  ({n / self.ready:.1f} projects/s)")
        print(f"operator RSS idle / peak:           {self.idle_rss / 2**20:.0f} MiB / {self.peak_rss / 2**20:.0f} MiB")
        print(f"peak per project above idle:        {(self.peak_rss - self.idle_rss) / n / 1024:.0f} KiB")


async def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise TimeoutError(port)


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0

    async def run(self) -> None:
        while True:
            try:
                rss = self.proc.memory_info().rss + sum(c.memory_info().rss for c in self.proc.children(True))
            except psutil.Error:
                return
            self.peak = max(self.peak, rss)
            await asyncio.sleep(0.2)


def client(kubeconfig: Path) -> httpx.AsyncClient:
    """An HTTP client with the kubeconfig's server and credentials (a token, or a client certificate)."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    verify: Any = True
    if cluster.get("certificate-authority"):
        import ssl

        verify = ssl.create_default_context(cafile=cluster["certificate-authority"])
        if user.get("client-certificate"):
            verify.load_cert_chain(user["client-certificate"], user["client-key"])
    headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
    return httpx.AsyncClient(base_url=cluster["server"], verify=verify, headers=headers, timeout=60)


async def measure(
    kubeconfig: Path,
    namespace: str,
    n: int,
    target: str,
    operator_args: list[str],
    tmp: Path,
    want_ready: bool,
    timeout: float = 1800,
) -> Figures:
    """Start the operator, create n projects at once, poll until each milestone is reached."""
    liveness = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KUBELABEL_")},
        "KUBECONFIG": str(kubeconfig),
        "KUBELABEL_OPERATOR_KUBECONFIG": str(kubeconfig),
        "KUBELABEL_OPERATOR_STANDALONE": "true",
        "KUBELABEL_OPERATOR_METRICS_PORT": str(free_port()),
        "KUBELABEL_OPERATOR_METRICS_HOST": "127.0.0.1",
        "KUBELABEL_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{liveness}/healthz",
        "KUBELABEL_OPERATOR_LOG_FORMAT": "plain",
    }
    log = (tmp / f"operator-{target.split()[0]}.log").open("wb")
    kubelabel = Path(sys.executable).with_name("kubelabel")
    operator = await asyncio.create_subprocess_exec(
        str(kubelabel), "operator", *operator_args, env=env, stdout=log, stderr=log
    )
    sampler = RssSampler(operator.pid)
    sampling = asyncio.create_task(sampler.run())
    try:
        await wait_port(liveness, timeout=120)
        await asyncio.sleep(1)
        idle_rss = sampler.peak
        async with client(kubeconfig) as api:
            path = f"/apis/kubelabel.io/v1alpha1/namespaces/{namespace}/labelingprojects"
            start = time.monotonic()
            limit = asyncio.Semaphore(50)

            async def create(i: int) -> None:
                async with limit:
                    (await api.post(path, json=project(i, namespace))).raise_for_status()

            await asyncio.gather(*(create(i) for i in range(n)))
            created = time.monotonic() - start
            children_done = status_done = ready_done = None
            while children_done is None or status_done is None or (want_ready and ready_done is None):
                await asyncio.sleep(1)
                deps = (await api.get(f"/apis/apps/v1/namespaces/{namespace}/deployments")).json()["items"]
                svcs = (await api.get(f"/api/v1/namespaces/{namespace}/services")).json()["items"]
                if children_done is None and len(deps) >= n and len(svcs) >= n:
                    children_done = time.monotonic() - start
                projects = (await api.get(path)).json()["items"]
                conditions = [(p.get("status") or {}).get("conditions") or [] for p in projects]
                if status_done is None and sum(1 for c in conditions if c) >= n:
                    status_done = time.monotonic() - start
                ready = sum(1 for c in conditions if any(x["type"] == "Ready" and x["status"] == "True" for x in c))
                if want_ready and ready_done is None and ready >= n:
                    ready_done = time.monotonic() - start
                if time.monotonic() - start > timeout:
                    raise TimeoutError(f"{len(deps)} deployments, {ready} Ready after {timeout:.0f} s")
        return Figures(target, n, created, children_done, status_done, ready_done, idle_rss, sampler.peak)
    finally:
        sampling.cancel()
        if operator.returncode is None:
            operator.terminate()
            try:
                await asyncio.wait_for(operator.wait(), 30)
            except TimeoutError:
                operator.kill()
                await operator.wait()
        log.close()


async def on_emulator(n: int, tmp: Path) -> Figures:
    port = free_port()
    config = tmp / "kubeconfig"
    mock = await asyncio.create_subprocess_exec(
        sys.executable, str(MOCK), "--port", str(port), "--kubeconfig", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_port(port)
        return await measure(config, "default", n, "emulated API (kmock)", ["--namespace", "default"], tmp, False)
    finally:
        mock.terminate()
        await mock.wait()


def cluster_kubeconfig() -> Path:
    given = os.environ.get("KUBELABEL_TEST_KUBECONFIG")
    if given:
        return Path(given)
    status = subprocess.run([sys.executable, str(CLUSTER_SCRIPT), "status"], capture_output=True, text=True)
    if status.returncode != 0:
        sys.exit("no cluster answers: start one with `make cluster` (or set KUBELABEL_TEST_KUBECONFIG)")
    return Path(status.stdout.strip().splitlines()[-1])


async def on_cluster(n: int, tmp: Path) -> Figures:
    sys.path.insert(0, str(CLUSTER_SCRIPT.parent))
    import cluster  # type: ignore[import-not-found]

    kubeconfig = cluster_kubeconfig()
    tag = f"kubelabel-bench-{uuid.uuid4().hex[:6]}"
    nodes = [f"{tag}-node-{i}" for i in range(math.ceil(n / PODS_PER_NODE))]
    room: list[tuple[str, dict[str, Any]]] = [
        ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": tag}}),
        (
            "/apis/networking.k8s.io/v1/servicecidrs",
            {"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": tag},
             "spec": {"cidrs": [BENCH_CIDR]}},
        ),
        *(("/api/v1/nodes", cluster._node(name)) for name in nodes),
    ]  # fmt: skip
    async with client(kubeconfig) as api:
        try:
            await _each(room, lambda p, body: api.post(p, json=body))
            await _nodes_ready(api, nodes)
            return await measure(
                kubeconfig, tag, n, "real control plane (tests/cluster)", ["--all-namespaces"], tmp, True
            )
        finally:
            # Services first: they hold addresses of the cluster's own (small) range too. Nodes last:
            # kwok finishes the deletion of the pods on them.
            services = (await api.get(f"/api/v1/namespaces/{tag}/services")).json().get("items") or []
            paths = [f"/api/v1/namespaces/{tag}/services/{svc['metadata']['name']}" for svc in services]
            await _each([(p, {}) for p in paths], lambda p, _: api.delete(p))
            await api.delete(f"/api/v1/namespaces/{tag}")
            deadline = time.monotonic() + 300
            while (await api.get(f"/api/v1/namespaces/{tag}")).status_code != 404 and time.monotonic() < deadline:
                await asyncio.sleep(2)
            await api.delete(f"/apis/networking.k8s.io/v1/servicecidrs/{tag}")
            await _each([(f"/api/v1/nodes/{name}", {}) for name in nodes], lambda p, _: api.delete(p))


async def _each(calls: list[tuple[str, dict[str, Any]]], send: Callable[[str, dict[str, Any]], Awaitable[Any]]) -> None:
    limit = asyncio.Semaphore(20)

    async def one(path: str, body: dict[str, Any]) -> None:
        async with limit:
            response = await send(path, body)
            if response.status_code >= 400 and response.status_code != 404:
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")

    await asyncio.gather(*(one(p, b) for p, b in calls))


async def _nodes_ready(api: httpx.AsyncClient, nodes: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = 0
        for name in nodes:
            body = (await api.get(f"/api/v1/nodes/{name}")).json()
            conds = (body.get("status") or {}).get("conditions") or []
            ready += any(c["type"] == "Ready" and c["status"] == "True" for c in conds)
        if ready == len(nodes):
            return
        await asyncio.sleep(0.5)
    raise TimeoutError("the bench's fake nodes did not become Ready")


def compare(emulated: Figures, real: Figures) -> None:
    print("-- real / emulated")
    for label, attr in (("all children", "children"), ("all with status", "statuses"), ("peak RSS", "peak_rss")):
        print(f"{label + ':':<36}{getattr(real, attr) / getattr(emulated, attr):.2f}x")


async def main(n: int, on_real_cluster: bool) -> None:
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"kubelabel-bench-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    emulated = await on_emulator(n, tmp)
    emulated.print()
    if on_real_cluster:
        real = await on_cluster(n, tmp)
        real.print()
        compare(emulated, real)
    print(f"operator logs in {tmp}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--cluster", action="store_true", help="also run on the real cluster and compare")
    args = parser.parse_args()
    asyncio.run(main(args.projects, args.cluster))
