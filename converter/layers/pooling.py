"""Pooling with Caffe's rounding, pad correction and AVE divisor.

MXNet's own `full` convention is used where it yields Caffe's output size; where Caffe's
pad correction drops the last window (pad >= kernel - stride + 1) the input is padded
explicitly and pooled with `valid`: MAX pads with -FLT_MAX (what Caffe yields for a
window wholly outside the map), AVE sums and divides by Caffe's per-window divisor.
"""
import math

import numpy as np

from .base import LayerHandler, register, spatial

FLT_MAX = float(np.finfo(np.float32).max)


def geometry(node, in_shape):
    p = node.param.pooling_param
    h, w = in_shape[2], in_shape[3]
    if p.global_pooling:
        return (h, w), (1, 1), (0, 0)
    kernel = spatial(p, "kernel_size", "kernel_h", "kernel_w")
    stride = spatial(p, "stride", "stride_h", "stride_w", default=(1, 1))
    pad = spatial(p, "pad", "pad_h", "pad_w", default=(0, 0))
    if not (p.HasField("stride_h") or p.HasField("stride_w")):
        stride = (p.stride, p.stride)
    return kernel, stride, pad


def caffe_pooled(size, k, s, p, ceil=True, any_pad=None):
    """Caffe's pooled size; the last-window correction runs when *either* axis is padded."""
    rnd = math.ceil if ceil else math.floor
    out = int(rnd((size + 2 * p - k) / s)) + 1
    if (p > 0 if any_pad is None else any_pad) and (out - 1) * s >= size + p:
        out -= 1
    return out


def native_pooled(size, k, s, p, ceil=True):
    rnd = math.ceil if ceil else math.floor
    return int(rnd((size + 2 * p - k) / s)) + 1


def ave_divisors(size, k, s, p, out):
    """Caffe's AVE divisor per output index along one axis: the window clipped to size + pad."""
    starts = np.arange(out) * s - p
    ends = np.minimum(starts + k, size + p)
    return (ends - starts).astype(np.float64)


@register
class Pooling(LayerHandler):
    types = ("Pooling",)
    mx_ops = ("Pooling", "slice", "Pad", "broadcast_mul", "BlockGrad")
    notes = "MAX and AVE (not STOCHASTIC)"

    def check(self, node):
        p = node.param.pooling_param
        problems = []
        if p.pool == p.STOCHASTIC:
            problems.append("STOCHASTIC pooling is not supported")
        if not p.global_pooling and spatial(p, "kernel_size", "kernel_h", "kernel_w") is None:
            problems.append("kernel size is missing")
        if p.global_pooling and (p.pad or p.pad_h or p.pad_w):
            problems.append("global pooling with padding")
        return problems

    def output_shapes(self, node, in_shapes):
        x = in_shapes[0]
        if len(x) != 4:
            raise ValueError(f"expects a 4-D input, got {list(x)}")
        (kh, kw), (sh, sw), (ph, pw) = geometry(node, x)
        if ph >= kh or pw >= kw:
            raise ValueError(f"pad ({ph}, {pw}) must be smaller than the kernel ({kh}, {kw})")
        ceil = node.param.pooling_param.round_mode == 0
        padded = bool(ph or pw)
        return [(x[0], x[1], caffe_pooled(x[2], kh, sh, ph, ceil, padded), caffe_pooled(x[3], kw, sw, pw, ceil, padded))]

    def emit(self, node, inputs, em):
        p = node.param.pooling_param
        nm = em.name(node)
        x_shape = em.in_shapes(node)[0]
        out = em.out_shapes(node)[0]
        mx = em.mx
        pool_type = "max" if p.pool == p.MAX else "avg"
        if p.global_pooling:
            return [mx.Pooling(inputs[0], global_pool=True, kernel=(1, 1), pool_type=pool_type, name=nm)]
        (kh, kw), (sh, sw), (ph, pw) = geometry(node, x_shape)
        ceil = p.round_mode == 0
        native = (native_pooled(x_shape[2], kh, sh, ph, ceil), native_pooled(x_shape[3], kw, sw, pw, ceil))
        if native == tuple(out[2:]) and not self._has_empty_window(x_shape, out, (kh, kw), (sh, sw), (ph, pw)):
            return [mx.Pooling(inputs[0], kernel=(kh, kw), stride=(sh, sw), pad=(ph, pw), pool_type=pool_type,
                               pooling_convention="full" if ceil else "valid", count_include_pad=True, name=nm)]
        return [self._explicit(node, inputs[0], em, nm, x_shape, out, (kh, kw), (sh, sw), (ph, pw), pool_type)]

    def reduction_length(self, node, in_shapes, out_shapes):
        (kh, kw), _, _ = geometry(node, in_shapes[0])
        return kh * kw if node.param.pooling_param.pool != node.param.pooling_param.MAX else 1

    @staticmethod
    def _has_empty_window(x, out, k, s, p):
        return any((o - 1) * st - pd >= size for o, st, pd, size in zip(out[2:], s, p, x[2:]))

    def _explicit(self, node, x, em, nm, x_shape, out, k, s, p, pool_type):
        mx = em.mx
        h, w = x_shape[2], x_shape[3]
        need = [(o - 1) * st + kk for o, st, kk in zip(out[2:], s, k)]
        extra = [n - size - pd for n, size, pd in zip(need, (h, w), p)]
        crop = [min(e, 0) for e in extra]
        if any(crop):
            x = mx.slice(x, begin=(None, None, 0, 0), end=(None, None, h + crop[0], w + crop[1]), name=em.sub("crop"))
        pad_width = (0, 0, 0, 0, p[0], max(extra[0], 0), p[1], max(extra[1], 0))
        if pool_type == "max":
            x = mx.pad(x, mode="constant", pad_width=pad_width, constant_value=-FLT_MAX, name=em.sub("pad"))
            return mx.Pooling(x, kernel=k, stride=s, pool_type="max", pooling_convention="valid", name=nm)
        x = mx.pad(x, mode="constant", pad_width=pad_width, constant_value=0, name=em.sub("pad"))
        mean = mx.Pooling(x, kernel=k, stride=s, pool_type="avg", pooling_convention="valid",
                          count_include_pad=True, name=em.sub("mean"))
        div = np.outer(ave_divisors(h, k[0], s[0], p[0], out[2]), ave_divisors(w, k[1], s[1], p[1], out[3]))
        with np.errstate(divide="ignore"):
            factor = (k[0] * k[1]) / div
        factor = factor.astype(np.float32).reshape(1, 1, out[2], out[3])
        return mx.broadcast_mul(mean, em.const("divisor", factor), name=nm)
