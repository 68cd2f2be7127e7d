#!/usr/bin/env bash
# label-studio-ml (Label Studio's ML backend SDK) for the ML compatibility tests. It pins
# Flask==1.1.2/werkzeug==2.0.2, which conflict with the dev extra, so it gets its own venv at
# .cache/lsml-venv (the tests find it there). Best effort: without it those tests skip.
set -uo pipefail
venv=".cache/lsml-venv"
[[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import label_studio_ml.api" 2>/dev/null && exit 0
python="${VENV:-.venv}/bin/python"
[[ -x "$python" ]] || python=python3
if "$python" -m venv "$venv" >/dev/null 2>&1 \
  && "$venv/bin/pip" install -q label-studio-ml redis rq >/dev/null 2>&1; then
  exit 0
fi
echo "install-test-deps: label-studio-ml could not be installed; the ML compatibility tests will be skipped" >&2
exit 0
