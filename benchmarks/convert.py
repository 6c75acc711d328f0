"""Conversion wall time and peak memory for Attention-92 with a seeded caffemodel (~200 MB),
and the time of the graph checks on very long nets.

    .venv/bin/python benchmarks/convert.py [--prototxt prototxts/attention92.prototxt] [--repeat 3]
    .venv/bin/python benchmarks/convert.py --graph-checks [--layers 4000,100000]

Conversion: the caffemodel is written first (init-weights, not timed); each conversion
(`caffe2mx convert NET W -o PREFIX`: read the caffemodel, build and check the graph, emit,
save the three files) then runs in a fresh
process that has already imported caffe2mx and MXNet, whose resident set at that point is the
baseline; the peak is the process's VmHWM (MXNet's shared library alone is ~150 MB of it). Reported per run and as medians:
the peak RSS, the peak above the baseline (what the conversion itself takes),
both as multiples of the caffemodel's size. Targets on the 2-core CI machine: under 10 s,
and the conversion's own peak under 1.5x the caffemodel (the streaming reader keeps each blob
once, and each NumPy blob is freed as soon as MXNet has its copy).

Graph checks: nets of N ReLU layers built in memory (no prototxt parsing, which is
protobuf's) in two orders: a chain, and the chain reversed so that every bottom is produced
only later (the worst case for the out-of-order check). Times build_graph + check_supported +
infer_shapes per size, median of --repeat rounds, interleaved; target 100,000 layers under 10 s.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import caffe2mx, mxnet  # MXNet's own import (seconds: mxnet.contrib pulls in onnx) is reported apart
t1 = time.perf_counter()
def status(key):  # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key)) / 1024
import caffe2mx.cli
base = status("VmRSS:")
assert caffe2mx.cli.main(["convert", sys.argv[1], sys.argv[2], "-o", sys.argv[3], "-q"]) == 0  # what a user runs
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "convert_s": t2 - t1, "base_rss_mb": base, "peak_rss_mb": status("VmHWM:")}))
"""


def convert_benchmark(args):
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "net.caffemodel"
        subprocess.run([sys.executable, "-m", "caffe2mx", "init-weights", args.prototxt, "-o", str(weights), "-q"],
                       check=True)
        size_mb = weights.stat().st_size / 2**20
        runs = []
        for i in range(args.repeat):
            out = subprocess.run([sys.executable, "-c", CHILD, args.prototxt, str(weights), f"{tmp}/out{i}"],
                                 check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
    print(f"net: {args.prototxt}\ncaffemodel: {size_mb:.0f} MB")
    for i, r in enumerate(runs):
        own = r["peak_rss_mb"] - r["base_rss_mb"]
        print(f"run {i}: convert {r['convert_s']:.2f} s (import before it {r['import_s']:.2f} s); RSS after import "
              f"{r['base_rss_mb']:.0f} MB, peak {r['peak_rss_mb']:.0f} MB = {r['peak_rss_mb'] / size_mb:.2f}x the "
              f"caffemodel; the conversion's own peak {own:.0f} MB = {own / size_mb:.2f}x")
    med = lambda k: statistics.median(r[k] for r in runs)  # noqa: E731
    own = statistics.median(r["peak_rss_mb"] - r["base_rss_mb"] for r in runs)
    print(f"median: convert {med('convert_s'):.2f} s (target < 10 s); peak RSS {med('peak_rss_mb'):.0f} MB = "
          f"{med('peak_rss_mb') / size_mb:.2f}x the caffemodel; the conversion's own peak {own:.0f} MB = "
          f"{own / size_mb:.2f}x (target < 1.5x)")


def _net(n, reverse):
    """A ParsedNet of n ReLU layers: t_i = relu(t_{i-1}); reversed order puts every producer
    after its reader."""
    from caffe2mx.converter.proto import caffe_pb
    from caffe2mx.converter.prototxt import ParsedNet
    net = caffe_pb.NetParameter(name="chain")
    net.input.append("data")
    net.input_shape.add().dim.extend([1, 3])
    order = range(n - 1, -1, -1) if reverse else range(n)
    for i in order:
        net.layer.add(name=f"l{i}", type="ReLU", bottom=["data" if i == 0 else f"t{i - 1}"], top=[f"t{i}"])
    return ParsedNet(net=net, path="chain.prototxt", layer_lines=tuple(range(4, 4 + n)), v1_layer_lines=())


def _check(parsed):
    from caffe2mx.converter.errors import Caffe2MXError
    from caffe2mx.converter.graph import build_graph
    from caffe2mx.converter.shapes import check_supported, infer_shapes
    t, cpu = time.perf_counter(), time.process_time()
    try:
        graph = build_graph(parsed)
        check_supported(graph)
        infer_shapes(graph)
        outcome = "ok"
    except Caffe2MXError as exc:
        outcome = str(exc).splitlines()[0][:60]
    return (time.perf_counter() - t, time.process_time() - cpu), outcome


def graph_benchmark(args):
    sizes = [int(s) for s in args.layers.split(",")]
    nets = {(n, rev): _net(n, rev) for n in sizes for rev in (False, True)}
    times = {k: [] for k in nets}
    outcomes = {}
    for _ in range(args.repeat):  # interleaved rounds
        for k, parsed in nets.items():
            dt, outcomes[k] = _check(parsed)
            times[k].append(dt)
    for (n, rev), ts in times.items():
        print(f"{n:>7} layers, {'reversed (every bottom produced later)' if rev else 'chain':<40} median "
              f"{statistics.median(t[0] for t in ts):6.2f} s wall, {statistics.median(t[1] for t in ts):6.2f} s CPU "
              f"over {len(ts)} rounds ({outcomes[(n, rev)]})")
    big = max(sizes)
    worst = max(statistics.median(t[0] for t in times[(big, r)]) for r in (False, True))
    worst_cpu = max(statistics.median(t[1] for t in times[(big, r)]) for r in (False, True))
    print(f"target: {big} layers under 10 s: worst median {worst:.2f} s wall, {worst_cpu:.2f} s CPU (wall time "
          f"includes waiting for a CPU on a shared machine)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prototxt", default=str(Path(__file__).resolve().parent.parent / "prototxts/attention92.prototxt"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--graph-checks", action="store_true", help="time the graph checks instead")
    ap.add_argument("--layers", default="4000,100000")
    args = ap.parse_args()
    graph_benchmark(args) if args.graph_checks else convert_benchmark(args)


if __name__ == "__main__":
    main()
