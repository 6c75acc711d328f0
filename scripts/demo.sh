#!/usr/bin/env bash
# The main job on built-in defaults: seeded weights for Attention-92 (unless a caffemodel
# is given), convert to MXNet, verify every blob against the NumPy reference, export ONNX.
#   scripts/demo.sh [NET.prototxt [NET.caffemodel]]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
PROTO=${1:-prototxts/attention92.prototxt}
NAME=$(basename "$PROTO" .prototxt)
OUT=out/$NAME
mkdir -p "$OUT"
export PATH="$PWD/.venv/bin:$PATH"
if [ $# -ge 2 ]; then
  WEIGHTS=$2
else
  WEIGHTS=$OUT/$NAME.caffemodel
  [ -f "$WEIGHTS" ] || caffe2mx init-weights "$PROTO" -o "$WEIGHTS" --seed 0
fi
caffe2mx convert "$PROTO" "$WEIGHTS" -o "$OUT/$NAME" --force  # the demo replaces its own earlier outputs
caffe2mx verify "$PROTO" "$WEIGHTS" --model "$OUT/$NAME" --reference numpy --report "$OUT/report"
caffe2mx export-onnx --symbol "$OUT/$NAME" -o "$OUT/$NAME.onnx" --force
caffe2mx verify "$PROTO" "$WEIGHTS" --model "$OUT/$NAME" --reference onnxruntime --onnx "$OUT/$NAME.onnx"
echo
echo "outputs in $OUT/:"
ls -1 "$OUT"
