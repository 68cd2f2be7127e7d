"""The emulated Kubernetes API served standalone on 127.0.0.1 (for kubectl, `kubelabel operator`, the bench).

    python tests/integration/operator/mock_server.py --port 18080 --kubeconfig /tmp/kmock.kubeconfig
    KUBECONFIG=/tmp/kmock.kubeconfig kubectl apply --validate=false -f manifests/examples/01-minimal-project.yaml

Test tooling only: never shipped in the image.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import kmock
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from k8s_emulator import Emulator  # noqa: E402


def kubeconfig(server: str, namespace: str = "default") -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kmock", "cluster": {"server": server}}],
            "users": [{"name": "kmock", "user": {"token": "kmock"}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock", "namespace": namespace}}],
            "current-context": "kmock",
        }
    )


async def serve(port: int, config_path: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # limit: kmock keeps every request for assertions; a long-running server must not refuse.
    async with (
        Emulator(limit=None, keep_requests=2) as emulator,
        kmock.Server(emulator, host="127.0.0.1", port=port) as server,
    ):
        url = str(server.url).rstrip("/")
        if config_path is not None:
            config_path.write_text(kubeconfig(url))
        print(f"emulated Kubernetes API on {url}", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--kubeconfig", type=Path, help="write a kubeconfig pointing at the server here")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.kubeconfig))


if __name__ == "__main__":
    main()
