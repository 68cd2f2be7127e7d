"""A kubelet for one container: runs a pod's container as a local process, as its spec says.

kwok plays the kubelet for every pod of the cluster (status only: nothing runs). Where a test needs
what a pod would really do (the project's API server, a sync Job, a model server), it takes the
pod's spec from the cluster and runs that container here: the same command and arguments, the env
with its Secret and ConfigMap references resolved through the API, ConfigMap and Secret volumes
written to files, and its mount paths mapped to local folders. So the test proves the spec the
operator wrote works, not a copy of it. It binds 127.0.0.1 instead of 0.0.0.0, and the container
port to a port the test picks. For a Job's pod, `report` writes the exit into the pod's status (with
the termination message), as a kubelet would.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realcluster import Kubectl

VENV_BIN = Path(sys.executable).parent
TERMINATION_LOG = "/dev/termination-log"


@dataclass
class LocalContainer:
    process: subprocess.Popen[bytes]
    log: Path
    termination_file: Path
    port: int | None
    folders: dict[str, Path] = field(default_factory=dict)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float = 120) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        from tests.support.processes import stop_process

        stop_process(self.process)


def _secret_value(api: Kubectl, namespace: str, name: str, key: str) -> str:
    secret = api.get("secret", name, namespace)
    assert secret is not None, f"Secret {namespace}/{name} missing"
    return base64.b64decode(secret["data"][key]).decode()


def _config_value(api: Kubectl, namespace: str, name: str, key: str) -> str:
    cm = api.get("configmap", name, namespace)
    assert cm is not None, f"ConfigMap {namespace}/{name} missing"
    return str(cm["data"][key])


def _field(pod: dict[str, Any], path: str) -> str:
    value: Any = pod
    for part in path.split("."):
        value = value[part]
    return str(value)


def run_container(
    api: Kubectl,
    pod: dict[str, Any],
    container_name: str,
    workdir: Path,
    port: int | None = None,
    volumes: dict[str, Path] | None = None,
    extra_env: dict[str, str] | None = None,
    init: bool = False,
) -> LocalContainer:
    """Start `container_name` of `pod` (an object read from the API) as a local process.

    `volumes` maps a volume name to a folder kept across runs (a PVC's data); other volumes are
    fresh folders under `workdir`.
    """
    namespace = pod["metadata"]["namespace"]
    spec = pod["spec"]
    containers = spec.get("initContainers", []) if init else spec["containers"]
    container = next(c for c in containers if c["name"] == container_name)
    workdir.mkdir(parents=True, exist_ok=True)

    folders: dict[str, Path] = {}
    for volume in spec.get("volumes", []):
        name = volume["name"]
        folder = (volumes or {}).get(name) or workdir / "volumes" / name
        folder.mkdir(parents=True, exist_ok=True)
        if "configMap" in volume:
            cm = api.get("configmap", volume["configMap"]["name"], namespace) or {}
            for key, value in (cm.get("data") or {}).items():
                (folder / key).write_text(value)
        elif "secret" in volume:
            secret = api.get("secret", volume["secret"]["secretName"], namespace) or {}
            for key, value in (secret.get("data") or {}).items():
                (folder / key).write_bytes(base64.b64decode(value))
        folders[name] = folder
    mounts = {m["mountPath"]: folders[m["name"]] for m in container.get("volumeMounts", [])}
    termination_file = workdir / "termination-log"
    termination_file.unlink(missing_ok=True)
    mounts[container.get("terminationMessagePath") or TERMINATION_LOG] = termination_file

    # One pass, longest path first: a local folder (under /tmp) is never mapped again by /tmp's mount.
    pattern = re.compile("|".join(re.escape(m) for m in sorted(mounts, key=len, reverse=True)) + r"(?=/|$|[^\w.-])")

    def local(value: str) -> str:
        return pattern.sub(lambda match: str(mounts[match.group(0)]), value)

    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    for src in container.get("envFrom", []):
        if "secretRef" in src:
            secret = api.get("secret", src["secretRef"]["name"], namespace) or {}
            env.update({k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()})
        if "configMapRef" in src:
            env.update((api.get("configmap", src["configMapRef"]["name"], namespace) or {}).get("data") or {})
    for item in container.get("env", []):
        source = item.get("valueFrom")
        if source is None:
            value = item.get("value", "")
        elif "secretKeyRef" in source:
            value = _secret_value(api, namespace, source["secretKeyRef"]["name"], source["secretKeyRef"]["key"])
        elif "configMapKeyRef" in source:
            value = _config_value(api, namespace, source["configMapKeyRef"]["name"], source["configMapKeyRef"]["key"])
        elif "fieldRef" in source:
            value = _field(pod, source["fieldRef"]["fieldPath"])
        else:
            raise AssertionError(f"env source not handled here: {source}")
        env[item["name"]] = local(value)
    env.update(extra_env or {})

    args = [*container.get("command", []), *container.get("args", [])]
    assert args, f"container {container_name} has no command"
    program = shutil.which(args[0], path=str(VENV_BIN)) or args[0]
    container_port = next((p["containerPort"] for p in container.get("ports", [])), None)
    argv = [program]
    for arg in args[1:]:
        arg = local(arg).replace("0.0.0.0", "127.0.0.1")
        if port is not None and container_port is not None and arg == str(container_port):
            arg = str(port)
        argv.append(arg)
    log = workdir / f"{container_name}.log"
    process = subprocess.Popen(
        argv,
        env=env,
        cwd=workdir,
        stdout=open(log, "ab"),  # noqa: SIM115 - the child keeps it
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    return LocalContainer(process, log, termination_file, port, folders)


def report_exit(api: Kubectl, pod: dict[str, Any], container: LocalContainer, timeout: float = 120) -> int:
    """Wait for the container, then write its exit into the pod's status (a Job's pod)."""
    code = container.wait(timeout)
    message = container.termination_file.read_text() if container.termination_file.exists() else ""
    if not message.strip() and code != 0:
        message = container.output()[-2000:]  # terminationMessagePolicy: FallbackToLogsOnError
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    spec_container = pod["spec"]["containers"][0]
    status = {
        "phase": "Succeeded" if code == 0 else "Failed",
        "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now, "reason": "PodCompleted"}],
        "containerStatuses": [
            {
                "name": spec_container["name"],
                "image": spec_container["image"],
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {
                    "terminated": {
                        "exitCode": code,
                        "reason": "Completed" if code == 0 else "Error",
                        "message": message[-4096:],
                        "startedAt": now,
                        "finishedAt": now,
                    }
                },
            }
        ],
    }
    api(
        "patch",
        "pod",
        pod["metadata"]["name"],
        "-n",
        pod["metadata"]["namespace"],
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    return code
