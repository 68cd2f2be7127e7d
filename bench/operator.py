"""Bench (by hand): N LabelingProjects applied at once against the standalone mock API.

    .venv/bin/python bench/operator.py [--projects 500]

Starts tests/integration/operator/mock_server.py and `kubelabel operator` as processes, creates the
projects concurrently, and prints the time until every project has its children (ConfigMap,
Secret, PVC, Deployment, Service) and a status with conditions, plus the operator's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import httpx
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.net import free_port  # noqa: E402

MOCK = ROOT / "tests" / "integration" / "operator" / "mock_server.py"
NS = "default"
CONFIG = '<View><Text name="text" value="$text"/><Choices name="c" toName="text"><Choice value="A"/></Choices></View>'


def project(i: int) -> dict:
    return {
        "apiVersion": "kubelabel.io/v1alpha1",
        "kind": "LabelingProject",
        "metadata": {"name": f"bench-{i:04d}", "namespace": NS},
        "spec": {"title": f"Bench {i}", "labelConfig": {"inline": CONFIG}},
    }


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


async def main(n: int) -> None:
    port, liveness = free_port(), free_port()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"kubelabel-bench-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "kubeconfig"
    mock = await asyncio.create_subprocess_exec(
        sys.executable, str(MOCK), "--port", str(port), "--kubeconfig", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await wait_port(port)
    env = {
        **os.environ,
        "KUBECONFIG": str(config),
        "KUBELABEL_OPERATOR_KUBECONFIG": str(config),
        "KUBELABEL_OPERATOR_STANDALONE": "true",
        "KUBELABEL_OPERATOR_METRICS_PORT": str(free_port()),
        "KUBELABEL_OPERATOR_METRICS_HOST": "127.0.0.1",
        "KUBELABEL_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{liveness}/healthz",
        "KUBELABEL_OPERATOR_LOG_FORMAT": "plain",
    }
    log = (tmp / "operator.log").open("wb")
    kubelabel = Path(sys.executable).with_name("kubelabel")
    operator = await asyncio.create_subprocess_exec(
        str(kubelabel), "operator", "--namespace", NS, env=env, stdout=log, stderr=log
    )
    sampler = RssSampler(operator.pid)
    sampling = asyncio.create_task(sampler.run())
    server = yaml.safe_load(config.read_text())["clusters"][0]["cluster"]["server"]
    try:
        await wait_port(liveness, timeout=120)
        idle_rss = sampler.peak
        async with httpx.AsyncClient(base_url=server, timeout=60) as api:
            path = f"/apis/kubelabel.io/v1alpha1/namespaces/{NS}/labelingprojects"
            start = time.monotonic()
            limit = asyncio.Semaphore(50)

            async def create(i: int) -> None:
                async with limit:
                    (await api.post(path, json=project(i))).raise_for_status()

            await asyncio.gather(*(create(i) for i in range(n)))
            applied = time.monotonic() - start
            children_done = status_done = None
            while children_done is None or status_done is None:
                await asyncio.sleep(0.5)
                deps = (await api.get(f"/apis/apps/v1/namespaces/{NS}/deployments")).json()["items"]
                svcs = (await api.get(f"/api/v1/namespaces/{NS}/services")).json()["items"]
                if children_done is None and len(deps) >= n and len(svcs) >= n:
                    children_done = time.monotonic() - start
                projects = (await api.get(path)).json()["items"]
                with_status = [p for p in projects if (p.get("status") or {}).get("conditions")]
                if status_done is None and len(with_status) >= n:
                    status_done = time.monotonic() - start
                if time.monotonic() - start > 1800:
                    raise TimeoutError(f"{len(deps)} deployments, {len(with_status)} statuses after 30 min")
        await asyncio.sleep(1)
        print(f"projects:                           {n}")
        print(f"created (API calls) in:             {applied:.1f} s")
        print(f"all children (Deployment+Service):  {children_done:.1f} s  ({n / children_done:.1f} projects/s)")
        print(f"all with status conditions:         {status_done:.1f} s  ({n / status_done:.1f} projects/s)")
        print(f"operator RSS idle / peak:           {idle_rss / 2**20:.0f} MiB / {sampler.peak / 2**20:.0f} MiB")
        print(f"peak per project above idle:        {(sampler.peak - idle_rss) / n / 1024:.0f} KiB")
    finally:
        sampling.cancel()
        for proc in (operator, mock):
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 20)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        log.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=500)
    asyncio.run(main(parser.parse_args().projects))
