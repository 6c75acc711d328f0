#!/bin/sh
# The long sweeps the default test run leaves out (tests marked `slow`): every corpus net and
# every generated prototxt verified (Attention-452, PSPNet-50 at 473x473 and FCN-8s included),
# and every planted fault on Attention-92 and ResNet-101. Then the verify benchmark.
# Usage: scripts/nightly.sh [extra pytest arguments]
set -e
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || scripts/setup.sh
"$PY" -m pytest -q --slow -m slow tests "$@"
"$PY" benchmarks/verify.py
