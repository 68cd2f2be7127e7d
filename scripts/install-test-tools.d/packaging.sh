#!/usr/bin/env bash
# kubectl (kustomize) for the packaging tests; see scripts/install-test-tools.sh.
set -euo pipefail
exec bash "$(dirname "$0")/../install-test-tools.sh" "${VENV:-.venv}"
