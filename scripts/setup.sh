#!/usr/bin/env bash
# Idempotent set-up: system packages (graphviz's `dot`, Chromium for the report
# screenshot test) where apt-get is usable, then .venv with caffe2mx and pinned deps.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

want=()
command -v dot >/dev/null 2>&1 || want+=(graphviz)
if [ "${CAFFE2MX_SKIP_BROWSER:-0}" != 1 ] && ! command -v chromium >/dev/null 2>&1; then want+=(chromium fonts-dejavu-core); fi
if [ ${#want[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: apt-get install ${want[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >/dev/null \
      || echo "setup: warning: could not install ${want[*]}; graph pictures / browser tests will be skipped" >&2
  else
    echo "setup: warning: ${want[*]} missing and apt-get not usable; install them for graph pictures and browser tests" >&2
  fi
fi

stamp=.venv/.caffe2mx-installed
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ setup.py -nt "$stamp" ] || [ requirements-lock.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c requirements-lock.txt -e ".[cpu,test]"
  touch "$stamp"
fi
