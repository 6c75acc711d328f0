"""How far MXNet's int8 operators (oneDNN) land from float on this CPU, one operator at a
time: why `caffe2mx quantize` keeps some operator types in float (converter/optimize_int8.py).

    .venv/bin/python benchmarks/int8_ops.py [--seed 0]

Each case is one operator with He-scaled Gaussian weights on U(-1, 1) (signed) or U(0, 1)
(unsigned, as after a ReLU) inputs, quantized by `quantize_model_mkldnn` (naive calibration on
the same inputs, weights per channel) with int8 and with `auto` (uint8 for unsigned data)
inputs, and compared with the float executor: max |int8 - float| / max |float| and the
relative RMS. Rounding alone costs about 1% on these sizes; much more is the kernel's doing
(e.g. 16-bit saturation of u8 x s8 pairs on CPUs without VNNI).
"""
import argparse

import numpy as np


def cases(mx, rng):
    x = mx.sym.var("data")

    def w(*shape):
        return mx.nd.array(rng.standard_normal(shape).astype(np.float32) / np.sqrt(np.prod(shape[1:])))
    conv = dict(no_bias=True, name="op")
    yield "conv 1x1, 64 -> 32", mx.sym.Convolution(x, num_filter=32, kernel=(1, 1), **conv), w(32, 64, 1, 1), (8, 64, 14, 14)
    yield "conv 3x3, 64 -> 32", mx.sym.Convolution(x, num_filter=32, kernel=(3, 3), pad=(1, 1), **conv), \
        w(32, 64, 3, 3), (8, 64, 14, 14)
    yield "conv 7x7 /2, 3 -> 32", mx.sym.Convolution(x, num_filter=32, kernel=(7, 7), stride=(2, 2), pad=(3, 3), **conv), \
        w(32, 3, 7, 7), (8, 3, 56, 56)
    yield "depthwise 1x1, 64", mx.sym.Convolution(x, num_filter=64, num_group=64, kernel=(1, 1), **conv), \
        w(64, 1, 1, 1), (8, 64, 14, 14)
    yield "FC 512 -> 100", mx.sym.FullyConnected(x, num_hidden=100, **conv), w(100, 512), (8, 512)
    yield "FC 14 -> 28, flatten=False", mx.sym.FullyConnected(x, num_hidden=28, flatten=False, **conv), \
        w(28, 14), (8, 64, 14, 14)


def measure(mx, quantization, sym, weight, data, dtype):
    params = {"op_weight": weight}
    ref = sym.bind(mx.cpu(), args={"data": mx.nd.array(data), **params}).forward()[0].asnumpy()
    it = mx.io.NDArrayIter(data, batch_size=len(data), data_name="data")
    qsym, qargs, qauxs = quantization.quantize_model_mkldnn(
        sym, params, {}, data_names=("data",), label_names=(), ctx=mx.cpu(), calib_mode="naive", calib_data=it,
        num_calib_examples=len(data), quantized_dtype=dtype, quantize_mode="full", quantize_granularity="channel-wise")
    exe = qsym.bind(mx.cpu(), args={"data": mx.nd.array(data), **qargs}, aux_states=qauxs, grad_req="null")
    got = exe.forward()[0].asnumpy()
    return (float(np.abs(got - ref).max() / np.abs(ref).max()),
            float(np.sqrt(np.mean((got - ref) ** 2) / np.mean(ref ** 2))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from caffe2mx.converter.mxnet_import import import_mxnet
    mx = import_mxnet()
    import logging
    logging.getLogger().setLevel(logging.ERROR)
    from mxnet.contrib import quantization
    rng = np.random.default_rng(args.seed)
    print(f"{'operator':30s} {'input':8s} {'int8 in: max / rms':>22s} {'auto (uint8) in: max / rms':>28s}")
    for name, sym, weight, shape in cases(mx, rng):
        for signed in (True, False):
            data = rng.uniform(-1.0 if signed else 0.0, 1.0, shape).astype(np.float32)
            row = [measure(mx, quantization, sym, weight, data, dtype) for dtype in ("int8", "auto")]
            print(f"{name:30s} {'signed' if signed else 'unsigned':8s} "
                  f"{row[0][0]:>13.2%} / {row[0][1]:<7.2%} {row[1][0]:>17.2%} / {row[1][1]:<7.2%}", flush=True)


if __name__ == "__main__":
    main()
