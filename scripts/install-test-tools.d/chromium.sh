#!/usr/bin/env bash
# Debian's Chromium for the web page test (Playwright drives it; never `playwright install`).
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium >/dev/null
else
  echo "install-test-deps: chromium missing and not installable here; the web page test will be skipped" >&2
fi
