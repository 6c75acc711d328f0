"""Images per second of one converted net in MXNet (symbol executor and hybridized Gluon
SymbolBlock) and ONNX Runtime, on the same input, in one run.

    .venv/bin/python benchmarks/runtimes.py                      # Attention-92, batch 1 and 8
    .venv/bin/python benchmarks/runtimes.py prototxts/attention56.prototxt --batches 1 4 --repeat 5

Seeded weights (as `caffe2mx convert` makes without a caffemodel); all three runtimes use
their default CPU thread pools. Each figure is the median of --repeat timed forward passes
after --warmup untimed ones; the outputs of the three are compared too, so a fast but
wrong runtime shows up in the table.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _timed(fn, warmup, repeat):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prototxt", nargs="?", default=str(REPO / "prototxts" / "attention92.prototxt"))
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    import mxnet as mx
    from caffe2mx import api
    from caffe2mx.converter.onnx_export import OnnxRunner, export_onnx
    from caffe2mx.verify.metrics import compare

    conv = api.convert(args.prototxt)
    (in_blob, in_var), = conv.name_map["inputs"].items()
    out_blob = next(iter(conv.name_map["outputs"]))
    shape = conv.name_map["input_shapes"][in_blob]
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = os.path.join(tmp, "net.onnx")
        export_onnx(conv, output=onnx_path)
        runner = OnnxRunner(onnx_path, blobs=[])

    params = {**conv.arg_params, **conv.aux_params}
    block = mx.gluon.SymbolBlock(conv.symbol, [mx.sym.var(in_var)])
    block_params = block.collect_params()
    for name, p in block_params.items():
        p._load_init(params[name], mx.cpu())
    block.hybridize(static_alloc=True, static_shape=True)

    rows = []
    for n in args.batches:
        x = np.random.default_rng(0).uniform(-1, 1, (n,) + tuple(shape[1:])).astype(np.float32)
        xnd = mx.nd.array(x)
        exe = conv.symbol.simple_bind(mx.cpu(), grad_req="null", **{in_var: x.shape})
        exe.copy_params_from(conv.arg_params, conv.aux_params, allow_extra_params=True)
        exe.arg_dict[in_var][:] = xnd

        def run_module():
            return exe.forward(is_train=False)[0].asnumpy()

        def run_gluon():
            return block(xnd).asnumpy()

        def run_ort():
            return runner.run({in_blob: x})[out_blob]

        outs = {"MXNet symbol": run_module(), "Gluon SymbolBlock": run_gluon(), "ONNX Runtime": run_ort()}
        for label, fn in (("MXNet symbol", run_module), ("Gluon SymbolBlock", run_gluon), ("ONNX Runtime", run_ort)):
            sec = _timed(fn, args.warmup, args.repeat)
            diff = compare(outs[label], outs["MXNet symbol"]).max_abs
            rows.append((label, n, n / sec, sec * 1000, diff))
        del exe

    name = Path(args.prototxt).stem
    print(f"{name}: {sys.argv[0]} (CPU, {os.cpu_count()} cores, median of {args.repeat})")
    print(f"{'runtime':<20}{'batch':>6}{'images/s':>12}{'ms/batch':>12}{'max |diff| vs MXNet':>22}")
    for label, n, ips, ms, diff in rows:
        print(f"{label:<20}{n:>6}{ips:>12.2f}{ms:>12.1f}{diff:>22.2e}")


if __name__ == "__main__":
    main()
