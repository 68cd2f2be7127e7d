"""A real Kubernetes control plane on 127.0.0.1, built from Go modules, for the test suite.

    python tests/cluster/cluster.py build   build what is missing; print the folder of the programs
    python tests/cluster/cluster.py up      build, start, and print the admin kubeconfig's path last
    python tests/cluster/cluster.py down    stop what `up` started (by PID) and remove its state
    python tests/cluster/cluster.py status  print the kubeconfig's path if the cluster answers

The programs: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from the
module in this folder (k8s.io/kubernetes at the version in go.mod, stamped with it), and kwok from
./kwok: it plays the kubelet for fake nodes, so pods of Deployments become Ready and pods of Jobs
Succeed (kwok's own stage files, copied from its module next to the programs). Built programs are
kept under ~/.cache/kubelabel/cluster-bin/<hash of the go.mod/go.sum files>, so a kept machine
starts a cluster in seconds; Go's own module and build caches stay in their default places.

A small provisioner (`provision`, started by `up`) gives every pending claim without a class a
volume, as kind's local-path-provisioner would. Everything listens on 127.0.0.1 only. The state
(certificates, etcd data, logs, kubeconfig) goes to $KUBELABEL_CLUSTER_DIR (default .cache/cluster
in the repository).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VERSION = "v1.37.2"  # k8s.io/kubernetes in go.mod; stamped into the programs
KUBE_PROGRAMS = {
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
    "kubectl": "k8s.io/kubernetes/cmd/kubectl",
    "etcd": "./cmd/etcd",
}
# kwok's stages: nodes become Ready and keep a lease; pods become Ready, Job pods Succeed, deletions finish.
KWOK_STAGES = ["node/fast/node-initialize.yaml", "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml"] + [
    f"pod/fast/pod-{s}.yaml" for s in ("ready", "complete", "delete")
]
# Pods of the operator's run-once Jobs (storage sync, backup, restore) are left Running: a test that
# wants one runs the pod's container itself (tests/e2e/kubelet.py: the real `kubelabel sync`,
# `backup`, `restore`) and writes its result into the pod's status, as a kubelet would. Had kwok
# made them Succeed, the operator would take a restore as done before it ran. Other Job pods
# Succeed through kwok's stage.
LOCALLY_RUN = ("app.kubernetes.io/component", ["storage-sync", "backup", "restore"])
# A pod annotated so is left as it is: a test writes its status (a crash loop, an image pull
# back-off...) and kwok does not make it Ready again.
MANUAL_STATUS_ANNOTATION = "e2e.kubelabel.io/status"
NODES = 2
SERVICE_RANGE = "10.96.0.0/24"  # never routed: nothing here connects to cluster IPs


def state_dir() -> Path:
    return Path(os.environ.get("KUBELABEL_CLUSTER_DIR", ROOT / ".cache" / "cluster")).resolve()


def bin_dir() -> Path:
    digest = hashlib.sha256()
    for f in ("go.mod", "go.sum", "kwok/go.mod", "kwok/go.sum", "cmd/etcd/main.go"):
        digest.update((HERE / f).read_bytes())
    digest.update(" ".join(KWOK_STAGES).encode())
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "kubelabel" / "cluster-bin" / f"{VERSION}-{digest.hexdigest()[:12]}"


def log(message: str) -> None:
    print(f"cluster: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- build


def build() -> Path:
    out = bin_dir()
    wanted = [*KUBE_PROGRAMS, "kwok", "kwok-stages.yaml"]
    if all((out / name).exists() for name in wanted):
        return out
    go = shutil.which("go")
    if go is None:
        raise SystemExit("cluster: `go` not found; the real-cluster tests need Go 1.26 (see docs/operator.md)")
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0"}
    minor = VERSION.split(".")[1]
    ldflags = (
        f"-s -w -X k8s.io/component-base/version.gitVersion={VERSION} -X k8s.io/component-base/version.gitMajor=1"
        f" -X k8s.io/component-base/version.gitMinor={minor} -X k8s.io/component-base/version.gitTreeState=clean"
    )
    started = time.monotonic()
    missing = [p for name, p in KUBE_PROGRAMS.items() if not (tmp / name).exists()]
    if missing:
        log(f"building {', '.join(missing)} (first time: tens of minutes; cached afterwards)")
        subprocess.run(
            [go, "build", "-trimpath", "-ldflags", ldflags, "-o", f"{tmp}/", *missing], cwd=HERE, env=env, check=True
        )
    if not (tmp / "kwok").exists():
        log("building kwok")
        subprocess.run(
            [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", f"{tmp}/kwok", "sigs.k8s.io/kwok/cmd/kwok"],
            cwd=HERE / "kwok",
            env=env,
            check=True,
        )
    modcache = subprocess.run(
        [go, "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok"],
        cwd=HERE / "kwok",
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    stages = [(Path(modcache) / "kustomize" / "stage" / name).read_text().strip() for name in KWOK_STAGES]
    (tmp / "kwok-stages.yaml").write_text("\n---\n".join(stages) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    log(f"built in {time.monotonic() - started:.0f} s: {out}")
    return out


def _stages(kwok_stages: Path) -> str:
    """kwok's stages, with the two exceptions the tests need (LOCALLY_RUN, MANUAL_STATUS_ANNOTATION)."""
    import yaml

    docs = [d for d in yaml.safe_load_all(kwok_stages.read_text()) if d]
    for stage in docs:
        selector = stage["spec"]["selector"]["matchExpressions"]
        if stage["metadata"]["name"] == "pod-complete":
            label, components = LOCALLY_RUN  # (NotIn holds for a pod without the label)
            selector.append({"key": f'.metadata.labels["{label}"]', "operator": "NotIn", "values": components})
        if stage["metadata"]["name"] in {"pod-ready", "pod-complete"}:
            selector.append({"key": f'.metadata.annotations["{MANUAL_STATUS_ANNOTATION}"]', "operator": "DoesNotExist"})
    return yaml.safe_dump_all(docs, sort_keys=False)


# ---------------------------------------------------------------- certificates


def _certificates(pki: Path) -> None:
    """A CA, the API server's serving certificate, an admin client certificate, the service-account key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    pki.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)

    def key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def write_key(name: str, k: rsa.RSAPrivateKey) -> None:
        (pki / name).write_bytes(
            k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )

    def name(cn: str, org: str | None = None) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    ca_key = key()
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("kubelabel-test-ca"))
        .issuer_name(name("kubelabel-test-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    write_key("ca.key", ca_key)
    (pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def issue(file: str, subject: x509.Name, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName] | None) -> None:
        k = key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca.subject)
            .public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        write_key(f"{file}.key", k)
        (pki / f"{file}.crt").write_bytes(
            builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        )

    from cryptography.x509.oid import ExtendedKeyUsageOID

    service_ip = next(ipaddress.ip_network(SERVICE_RANGE).hosts())
    issue(
        "apiserver",
        name("kube-apiserver"),
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName(d) for d in ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")]
        + [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(service_ip)],
    )
    issue("admin", name("kubernetes-admin", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH, None)
    write_key("sa.key", key())
    sa = serialization.load_pem_private_key((pki / "sa.key").read_bytes(), None)
    (pki / "sa.pub").write_bytes(
        sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _kubeconfig(path: Path, server: str, pki: Path) -> None:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "kubelabel-test",
                        "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")},
                    }
                ],
                "users": [
                    {
                        "name": "admin",
                        "user": {"client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")},
                    }
                ],
                "contexts": [{"name": "admin", "context": {"cluster": "kubelabel-test", "user": "admin"}}],
                "current-context": "admin",
            },
            indent=2,
        )
    )


# ---------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(state: dict, name: str, argv: list[str]) -> None:
    logs = Path(state["dir"]) / "logs"
    logs.mkdir(exist_ok=True)
    out = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    state["pids"][name] = proc.pid
    _save(state)


def _save(state: dict) -> None:
    (Path(state["dir"]) / "state.json").write_text(json.dumps(state, indent=2))


def _load() -> dict | None:
    f = state_dir() / "state.json"
    return json.loads(f.read_text()) if f.exists() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _get(url: str, pki: Path, timeout: float = 2.0) -> int:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as r:  # noqa: S310 - 127.0.0.1 only
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _wait(what: str, check, state: dict, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        for name, pid in state["pids"].items():
            if not _alive(pid):
                tail = (Path(state["dir"]) / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
                raise SystemExit(f"cluster: {name} exited while waiting for {what}:\n{tail}")
        time.sleep(0.2)
    raise SystemExit(f"cluster: {what} not ready after {timeout:.0f} s (logs in {state['dir']}/logs)")


def _kubectl(bins: Path, kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        [str(bins / "kubectl"), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def up() -> Path:
    existing = _load()
    if existing and all(_alive(p) for p in existing["pids"].values()):
        return Path(existing["kubeconfig"])
    if existing:
        down()
    bins = build()
    d = state_dir()
    d.mkdir(parents=True, exist_ok=True)
    pki = d / "pki"
    _certificates(pki)
    ports = {k: _free_port() for k in ("etcd", "etcd_peer", "apiserver", "kcm", "scheduler", "kwok")}
    server = f"https://127.0.0.1:{ports['apiserver']}"
    kubeconfig = d / "admin.kubeconfig"
    _kubeconfig(kubeconfig, server, pki)
    state = {
        "dir": str(d),
        "server": server,
        "kubeconfig": str(kubeconfig),
        "ports": ports,
        "pids": {},
        "bin": str(bins),
    }
    started = time.monotonic()

    etcd_url, peer_url = f"http://127.0.0.1:{ports['etcd']}", f"http://127.0.0.1:{ports['etcd_peer']}"
    _start(
        state,
        "etcd",
        [
            str(bins / "etcd"),
            "--name=kubelabel-test",
            f"--data-dir={d / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=kubelabel-test={peer_url}",
            "--unsafe-no-fsync",  # a test cluster: its data is thrown away
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ],
    )
    _wait("etcd", lambda: _port_open(ports["etcd"]), state)
    _start(
        state,
        "kube-apiserver",
        [
            str(bins / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",  # the advertise address is loopback
            "--profiling=false",
        ],
    )
    _wait("kube-apiserver", lambda: _get(f"{server}/readyz", pki) == 200, state)
    for name, extra in (
        (
            "kube-controller-manager",
            [
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                "--use-service-account-credentials=true",
                f"--secure-port={ports['kcm']}",
            ],
        ),
        ("kube-scheduler", [f"--secure-port={ports['scheduler']}"]),
    ):
        _start(
            state,
            name,
            [
                str(bins / name),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                "--leader-elect=false",
                *extra,
            ],
        )
    stages = d / "stages.yaml"
    stages.write_text(_stages(bins / "kwok-stages.yaml"))
    _start(
        state,
        "kwok",
        [
            str(bins / "kwok"),
            f"--kubeconfig={kubeconfig}",
            f"--config={stages}",
            "--manage-all-nodes=true",
            f"--tls-cert-file={pki / 'admin.crt'}",
            f"--tls-private-key-file={pki / 'admin.key'}",
            f"--server-address=127.0.0.1:{ports['kwok']}",
            "--node-ip=127.0.0.1",
            "--node-lease-duration-seconds=40",
            "--cidr=10.244.0.0/16",
        ],
    )
    for i in range(NODES):
        _kubectl(bins, kubeconfig, "apply", "-f", "-", stdin=json.dumps(_node(f"kwok-node-{i}")))
    _wait(
        "nodes Ready",
        lambda: (
            _kubectl(
                bins,
                kubeconfig,
                "get",
                "nodes",
                "-o",
                "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}",
            ).split()
            == ["True"] * NODES
        ),
        state,
    )
    _wait(
        "the default ServiceAccount",
        lambda: (
            subprocess.run(
                [str(bins / "kubectl"), "--kubeconfig", str(kubeconfig), "get", "serviceaccount", "default"],
                capture_output=True,
            ).returncode
            == 0
        ),
        state,
    )
    _start(
        state, "provisioner", [sys.executable, str(Path(__file__).resolve()), "provision", str(kubeconfig), str(bins)]
    )
    log(f"up in {time.monotonic() - started:.1f} s: {server}")
    return kubeconfig


def provision(kubeconfig: Path, bins: Path) -> None:
    """The cluster's volume provisioner (kind has local-path-provisioner; this cluster has this):
    every pending claim without a class gets a PersistentVolume bound to it by claimRef. Nothing
    mounts it (kwok runs no containers); the scheduler only needs the claim bound."""
    while True:
        try:
            claims = json.loads(_kubectl(bins, kubeconfig, "get", "pvc", "-A", "-o", "json"))["items"]
            for claim in claims:
                meta, spec = claim["metadata"], claim["spec"]
                if claim["status"].get("phase") != "Pending" or spec.get("volumeName") or spec.get("storageClassName"):
                    continue
                volume = {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": f"pv-{meta['uid']}", "labels": {"kubelabel.io/provisioned-for": meta["name"]}},
                    "spec": {
                        "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                        "accessModes": spec["accessModes"],
                        "persistentVolumeReclaimPolicy": "Delete",
                        "hostPath": {"path": f"/nonexistent/{meta['uid']}"},
                        "claimRef": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
                    },
                }
                subprocess.run(
                    [str(bins / "kubectl"), "--kubeconfig", str(kubeconfig), "create", "-f", "-"],
                    input=json.dumps(volume),
                    capture_output=True,
                    text=True,
                    check=False,
                )
        except (subprocess.CalledProcessError, ValueError, KeyError):
            pass  # the API server starting or stopping: try again
        time.sleep(0.5)


def _node(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": "4"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": "4"},
        },
    }


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def down() -> None:
    state = _load()
    if state:
        # Controllers first, etcd last.
        for name in reversed(list(state["pids"])):
            pid = state["pids"][name]
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for pid in state["pids"].values():
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(state_dir(), ignore_errors=True)


def status() -> Path | None:
    state = _load()
    if not state or not all(_alive(p) for p in state["pids"].values()):
        return None
    return Path(state["kubeconfig"]) if _get(f"{state['server']}/readyz", Path(state["dir"]) / "pki") == 200 else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["build", "up", "down", "status", "provision"])
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.command == "provision":  # started by `up`
        provision(Path(args.args[0]), Path(args.args[1]))
    elif args.command == "build":
        print(build())
    elif args.command == "up":
        print(up())
    elif args.command == "down":
        down()
    else:
        path = status()
        if path is None:
            log("not running")
            return 1
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
