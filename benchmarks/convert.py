"""Conversion wall time and peak memory for Attention-92 with a seeded caffemodel (~210 MB).

    .venv/bin/python benchmarks/convert.py [--prototxt prototxts/attention92.prototxt] [--repeat 3]

The caffemodel is written first (init-weights, not timed); each conversion (read the
caffemodel, build and check the graph, emit, save the three files) then runs in a fresh
process whose peak RSS is read from getrusage. Targets on the 2-core CI machine: under
10 s, and peak memory under 3x the caffemodel size.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import caffe2mx, mxnet  # MXNet's own import (seconds: mxnet.contrib pulls in onnx) is reported apart
t1 = time.perf_counter()
caffe2mx.convert(sys.argv[1], sys.argv[2], output_prefix=sys.argv[3])
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "convert_s": t2 - t1,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prototxt", default=str(Path(__file__).resolve().parent.parent / "prototxts/attention92.prototxt"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "net.caffemodel"
        subprocess.run([sys.executable, "-m", "caffe2mx", "init-weights", args.prototxt, "-o", str(weights)],
                       check=True)
        size_mb = weights.stat().st_size / 2**20
        runs = []
        for i in range(args.repeat):
            out = subprocess.run([sys.executable, "-c", CHILD, args.prototxt, str(weights), f"{tmp}/out{i}"],
                                 check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
    best = min(r["convert_s"] for r in runs)
    peak = max(r["peak_rss_mb"] for r in runs)
    print(f"net: {args.prototxt}\ncaffemodel: {size_mb:.0f} MB")
    for i, r in enumerate(runs):
        print(f"run {i}: convert {r['convert_s']:.2f} s (importing caffe2mx+mxnet before it: {r['import_s']:.2f} s), peak RSS {r['peak_rss_mb']:.0f} MB")
    print(f"best convert {best:.2f} s (target < 10 s); peak RSS {peak:.0f} MB = {peak / size_mb:.2f}x the "
          f"caffemodel (target < 3x)")


if __name__ == "__main__":
    main()
