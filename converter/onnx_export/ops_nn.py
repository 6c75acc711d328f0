"""Convolution, Deconvolution, FullyConnected, BatchNorm, Pooling, LRN and the bilinear resize.

Pooling follows MXNet's own conventions exactly (the emitter already chose them to equal
Caffe's): `valid` maps to ONNX pooling as is; `full` (ceil rounding) is written with
explicit end padding instead of ONNX `ceil_mode`, whose last-window rule and AVE divisor
differ between runtimes: MAX pads the end asymmetrically, AVE pads with zeros, averages
over whole windows and multiplies by a constant map that turns that into MXNet's divisor.
"""
import numpy as np

from .registry import Unsupported, attr_bool, attr_float, attr_int, attr_tuple, translates

FLT_MAX = float(np.finfo(np.float32).max)


def _spatial(attrs, key, n, default):
    value = attr_tuple(attrs, key)
    return list(value) if value else [default] * n


def _conv_attrs(node):
    a = node.attrs
    kernel = list(attr_tuple(a, "kernel"))
    n = len(kernel)
    pad = _spatial(a, "pad", n, 0)
    if a.get("layout") not in (None, "None", "NCHW", "NCW", "NCDHW"):
        raise Unsupported(f"layout {a['layout']}")
    return dict(kernel_shape=kernel, strides=_spatial(a, "stride", n, 1), dilations=_spatial(a, "dilate", n, 1),
                pads=pad + pad, group=attr_int(a, "num_group", 1))


@translates("Convolution")
def convolution(b, node):
    inputs = [node.inputs[0], b.param(node.inputs[1])]
    if not attr_bool(node.attrs, "no_bias", False):
        inputs.append(b.param(node.inputs[2]))
    b.add("Conv", inputs, node.output, **_conv_attrs(node))


@translates("Deconvolution")
def deconvolution(b, node):
    a = node.attrs
    if attr_tuple(a, "target_shape") and any(attr_tuple(a, "target_shape")):
        raise Unsupported("Deconvolution with target_shape")
    attrs = _conv_attrs(node)
    adj = attr_tuple(a, "adj")
    if adj and any(adj):
        attrs["output_padding"] = list(adj)
    inputs = [node.inputs[0], b.param(node.inputs[1])]
    if not attr_bool(a, "no_bias", True):
        inputs.append(b.param(node.inputs[2]))
    b.add("ConvTranspose", inputs, node.output, **attrs)


@translates("FullyConnected")
def fully_connected(b, node):
    a = node.attrs
    no_bias = attr_bool(a, "no_bias", False)
    x = node.inputs[0]
    if attr_bool(a, "flatten", True):
        if len(node.in_shapes[0]) != 2:
            x = b.add("Flatten", [x], suffix="flatten", axis=1)
        inputs = [x, b.param(node.inputs[1])] + ([] if no_bias else [b.param(node.inputs[2])])
        b.add("Gemm", inputs, node.output, transB=1)
        return
    weight_t = b.initializer(f"{node.inputs[1]}_transposed", b.param_array(node.inputs[1]).T)
    if no_bias:
        b.add("MatMul", [x, weight_t], node.output)
        return
    y = b.add("MatMul", [x, weight_t], suffix="matmul")
    b.add("Add", [y, b.param(node.inputs[2])], node.output)


@translates("BatchNorm")
def batch_norm(b, node):
    """Inference BatchNorm; fix_gamma=True (MXNet's default) means gamma is taken as 1."""
    a = node.attrs
    if attr_int(a, "axis", 1) != 1:
        raise Unsupported(f"BatchNorm over axis {a['axis']}")
    gamma = node.inputs[1]
    if attr_bool(a, "fix_gamma", True):
        scale = b.const("gamma_fixed", np.ones(b.param_array(gamma).shape, np.float32))
    else:
        scale = b.param(gamma)
    inputs = [node.inputs[0], scale] + [b.param(n) for n in node.inputs[2:5]]
    b.add("BatchNormalization", inputs, node.output, epsilon=attr_float(a, "eps", 1e-3))


def _pool_windows(size, k, s, p, convention):
    if convention == "full":
        out = -(-(size + 2 * p - k) // s) + 1
    else:
        out = (size + 2 * p - k) // s + 1
    return out, max((out - 1) * s + k - size - 2 * p, 0)


@translates("Pooling")
def pooling(b, node):
    a = node.attrs
    pool_type = a.get("pool_type", "max")
    if pool_type not in ("max", "avg"):
        raise Unsupported(f"pool_type {pool_type}")
    if attr_bool(a, "global_pool"):
        b.add("GlobalMaxPool" if pool_type == "max" else "GlobalAveragePool", [node.inputs[0]], node.output)
        return
    convention = a.get("pooling_convention", "valid")
    if convention not in ("valid", "full"):
        raise Unsupported(f"pooling_convention {convention}")
    kernel = list(attr_tuple(a, "kernel"))
    n = len(kernel)
    stride, pad = _spatial(a, "stride", n, 1), _spatial(a, "pad", n, 0)
    include_pad = a.get("count_include_pad") in (None, "None") or attr_bool(a, "count_include_pad")
    sizes = list(node.in_shapes[0][2:])
    geo = [_pool_windows(sz, k, s, p, convention) for sz, k, s, p in zip(sizes, kernel, stride, pad)]
    outs, extra = [g[0] for g in geo], [g[1] for g in geo]
    empty = any((o - 1) * s - p >= sz for o, s, p, sz in zip(outs, stride, pad, sizes))
    x = node.inputs[0]
    if pool_type == "max":
        if not empty:
            b.add("MaxPool", [x], node.output, kernel_shape=kernel, strides=stride,
                  pads=pad + [p + e for p, e in zip(pad, extra)])
            return
        x = _pad(b, x, pad, extra, -FLT_MAX)
        b.add("MaxPool", [x], node.output, kernel_shape=kernel, strides=stride)
        return
    if not any(extra):
        b.add("AveragePool", [x], node.output, kernel_shape=kernel, strides=stride, pads=pad + pad,
              count_include_pad=int(include_pad))
        return
    factor = 1.0
    for axis, (sz, k, s, p, o) in enumerate(zip(sizes, kernel, stride, pad, outs)):
        starts = np.arange(o) * s - p
        ends = np.minimum(starts + k, sz + p)
        if not include_pad:
            starts, ends = np.maximum(starts, 0), np.minimum(ends, sz)
        count = (ends - starts).astype(np.float64)
        if np.any(count <= 0):
            raise Unsupported(f"average pooling window wholly outside the input along axis {axis + 2}")
        factor = np.multiply.outer(factor, k / count) if axis else k / count
    x = _pad(b, x, pad, extra, 0.0)
    mean = b.add("AveragePool", [x], suffix="window_mean", kernel_shape=kernel, strides=stride)
    factor = np.asarray(factor, np.float32).reshape((1, 1) + tuple(outs))
    b.add("Mul", [mean, b.const("divisor_correction", factor)], node.output)


def _pad(b, x, pad, extra, value):
    pads = [0, 0] + list(pad) + [0, 0] + [p + e for p, e in zip(pad, extra)]
    return b.add("Pad", [x, b.ints("pads", pads), b.scalar("pad_value", value)], suffix="pad", mode="constant")


@translates("LRN")
def lrn(b, node):
    a = node.attrs
    b.add("LRN", [node.inputs[0]], node.output, alpha=attr_float(a, "alpha", 1e-4),
          beta=attr_float(a, "beta", 0.75), bias=attr_float(a, "knorm", 2.0), size=attr_int(a, "nsize"))


@translates("_contrib_BilinearResize2D")
def bilinear_resize(b, node):
    """Align-corners bilinear to the fixed size MXNet computed; only that mode has an exact ONNX form."""
    a = node.attrs
    if not attr_bool(a, "align_corners", True):
        raise Unsupported("BilinearResize2D with align_corners=False (MXNet's sampling there has no exact "
                          "ONNX Resize equivalent)")
    if len(node.inputs) > 1:
        raise Unsupported("BilinearResize2D sized by a second input (mode like)")
    oh, ow = node.out_shape[2], node.out_shape[3]
    x = node.inputs[0]
    attrs = dict(mode="linear", coordinate_transformation_mode="align_corners")
    if b.opset >= 18:
        b.add("Resize", [x, "", "", b.ints("sizes", [oh, ow])], node.output, axes=[2, 3], **attrs)
        return
    sizes = b.add("Concat", [b.batch_and_channels(x), b.ints("spatial_size", [oh, ow])], suffix="sizes", axis=0)
    b.add("Resize", [x, "", "", sizes], node.output, **attrs)
