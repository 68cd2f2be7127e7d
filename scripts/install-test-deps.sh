#!/usr/bin/env bash
# Installs the non-Python things the tests need. Idempotent; safe to run on every `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Storage emulators from npm (Azurite, s3rver), pinned by package-lock.json.
if [[ -f package.json ]]; then
  if command -v npm >/dev/null 2>&1; then
    if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
      npm ci --no-audit --no-fund --loglevel=error
    fi
  else
    echo "install-test-deps: npm not found; storage emulator tests that need Azurite/s3rver will be skipped" >&2
  fi
fi

# Extra tools some tests use (only installed where we are allowed to: CI runs as root).
for script in scripts/install-test-tools.d/*.sh; do
  [[ -e "$script" ]] && bash "$script"
done
exit 0
