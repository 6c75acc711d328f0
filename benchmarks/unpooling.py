"""Cost of the tie-settling sort in SegNet's unpooling (Upsample with a mask bottom).

    .venv/bin/python benchmarks/unpooling.py [--shape 1,64,180,240] [--rounds 7]

Two conversions of one Upsample (scale 2) on a SegNet-sized decoder map: the general
emission (sort of every plane so that the later of two writes to one index wins) and the
emission used when the mask comes straight from a non-overlapping MAX pooling (indices
distinct by construction, no sort). Both run on the same k2s2-style mask, interleaved
round by round; the medians and their ratio are printed, and both outputs must be equal.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="1,64,180,240", help="N,C,H,W of the pooled map (the Upsample input)")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    import mxnet as mx

    import caffe2mx
    from caffe2mx.converter.layers import interp
    n, c, h, w = shape
    text = (f'input: "data" input_shape {{ dim: {n} dim: {c} dim: {h} dim: {w} }}\n'
            f'input: "mask" input_shape {{ dim: {n} dim: {c} dim: {h} dim: {w} }}\n'
            'layer { name: "up" type: "Upsample" bottom: "data" bottom: "mask" top: "up" '
            'upsample_param { scale: 2 } }\n')
    rng = np.random.default_rng(0)
    rows = np.arange(h)[:, None] * 2 + rng.integers(0, 2, shape)
    cols = np.arange(w)[None, :] * 2 + rng.integers(0, 2, shape)
    inputs = {"data": rng.standard_normal(shape).astype(np.float32), "mask": (rows * 2 * w + cols).astype(np.float32)}
    executors = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.prototxt"
        path.write_text(text)
        general = interp._mask_is_distinct
        for label, rule in (("sorted", general), ("distinct", lambda em, node: True)):
            interp._mask_is_distinct = rule
            try:
                conv = caffe2mx.convert(str(path))
            finally:
                interp._mask_is_distinct = general
            feed = {conv.name_map["inputs"][k]: mx.nd.array(v) for k, v in inputs.items()}
            executors[label] = conv.symbol.bind(mx.cpu(), args={**feed, **conv.arg_params}, grad_req="null")
    outs = {k: ex.forward()[0].asnumpy() for k, ex in executors.items()}  # warm-up, and the outputs
    if not np.array_equal(outs["sorted"], outs["distinct"]):
        sys.exit("the two emissions disagree")
    times = {k: [] for k in executors}
    for _ in range(args.rounds):
        for label, ex in executors.items():
            t = time.perf_counter()
            ex.forward()[0].wait_to_read()
            times[label].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(f"Upsample scale 2 on {list(shape)} -> {[n, c, 2 * h, 2 * w]}, {args.rounds} interleaved rounds")
    for k, v in med.items():
        print(f"  {k:9s} median {v * 1e3:8.1f} ms")
    print(f"  sorted / distinct = {med['sorted'] / med['distinct']:.2f}x")


if __name__ == "__main__":
    main()
