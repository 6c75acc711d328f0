"""Pooling (MAX, AVE; ceil or floor rounding; the MAX mask top; global) and SPP.

MXNet's own `full` convention is used where it yields Caffe's output size; where Caffe's
pad correction drops the last window (pad >= kernel - stride + 1) the input is padded
explicitly and pooled with `valid`: MAX pads with -FLT_MAX (what Caffe yields for a
window wholly outside the map), AVE sums and divides by Caffe's per-window divisor.

Rounding: BVLC's `round_mode` (CEIL, FLOOR) and the `ceil_mode` of the forks of BVLC
PR #3057 (true = ceil, false = floor) mean the same thing; both keep Caffe's pad correction.

MAX pooling with a second top also writes Caffe's mask: the flat index h * W + w of each
window's maximum within the unpadded plane, as float. MXNet has no pooling op with argmax
output, so the mask is Caffe's own scan written with element-wise ops: the window taps are
visited in Caffe's order (rows, then columns) and a tap wins only when strictly greater, so
ties keep the first maximum and a padded position (-FLT_MAX, index -1) never wins.
"""
import math

import numpy as np

from .base import INT32_MAX, LayerHandler, int_fields, need_rank, pair_fields, register, spatial, zero_fields

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


def rounds_up(p):
    """Output sizes round up unless `round_mode: FLOOR` or the forks' `ceil_mode: false`."""
    return p.round_mode == p.CEIL and not (p.HasField("ceil_mode") and not p.ceil_mode)


def caffe_pooled(size, k, s, p, ceil=True, any_pad=None):
    """Caffe's pooled size; the last-window correction runs when *either* axis is padded."""
    rnd = math.ceil if ceil else math.floor
    out = int(rnd((size + 2 * p - k) / s)) + 1
    if (p > 0 if any_pad is None else any_pad) and (out - 1) * s >= size + p:
        out -= 1
    return out


def pooled_hw(x_shape, kernel, stride, pad, ceil):
    """(out_h, out_w) for a 4-D input, with Caffe's rounding and pad correction."""
    padded = bool(pad[0] or pad[1])
    return tuple(caffe_pooled(x_shape[a + 2], kernel[a], stride[a], pad[a], ceil, padded) for a in (0, 1))


def native_pooled(size, k, s, p, ceil=True):
    rnd = math.ceil if ceil else math.floor
    return int(rnd((size + 2 * p - k) / s)) + 1


def ave_divisors(size, k, s, p, out):
    """Caffe's AVE divisor per output index along one axis: the window clipped to size + pad."""
    starts = np.arange(out) * s - p
    ends = np.minimum(starts + k, size + p)
    return (ends - starts).astype(np.float64)


def emit_pool(em, x, x_shape, out_hw, kernel, stride, pad, ceil, pool_type, name, tag=""):
    """One Caffe pooling of symbol `x` (MAX or AVE) with the given geometry; helper ops are
    named `<layer>_<tag><helper>`."""
    mx = em.mx
    native = (native_pooled(x_shape[2], kernel[0], stride[0], pad[0], ceil),
              native_pooled(x_shape[3], kernel[1], stride[1], pad[1], ceil))
    if native == tuple(out_hw) and not has_empty_window(x_shape, out_hw, stride, pad):
        return mx.Pooling(x, kernel=kernel, stride=stride, pad=pad, pool_type=pool_type,
                          pooling_convention="full" if ceil else "valid", count_include_pad=True, name=name)
    return _explicit(em, x, x_shape, out_hw, kernel, stride, pad, pool_type, name, tag)


def has_empty_window(x, out_hw, s, p):
    """Does Caffe's ceil rounding leave a last window wholly in the padding (or beyond)?"""
    return any((o - 1) * st - pd >= size for o, st, pd, size in zip(out_hw, s, p, x[2:]))


def _explicit(em, x, x_shape, out_hw, k, s, p, pool_type, name, tag):
    mx = em.mx
    h, w = x_shape[2], x_shape[3]
    need = [(o - 1) * st + kk for o, st, kk in zip(out_hw, s, k)]
    extra = [n - size - pd for n, size, pd in zip(need, (h, w), p)]
    crop = [min(e, 0) for e in extra]
    if any(crop):
        x = mx.slice(x, begin=(None, None, 0, 0), end=(None, None, h + crop[0], w + crop[1]), name=em.sub(tag + "crop"))
    pad_width = (0, 0, 0, 0, p[0], max(extra[0], 0), p[1], max(extra[1], 0))
    if pool_type == "max":
        x = mx.pad(x, mode="constant", pad_width=pad_width, constant_value=-FLT_MAX, name=em.sub(tag + "pad"))
        return mx.Pooling(x, kernel=k, stride=s, pool_type="max", pooling_convention="valid", name=name)
    x = mx.pad(x, mode="constant", pad_width=pad_width, constant_value=0, name=em.sub(tag + "pad"))
    mean = mx.Pooling(x, kernel=k, stride=s, pool_type="avg", pooling_convention="valid",
                      count_include_pad=True, name=em.sub(tag + "mean"))
    div = np.outer(ave_divisors(h, k[0], s[0], p[0], out_hw[0]), ave_divisors(w, k[1], s[1], p[1], out_hw[1]))
    with np.errstate(divide="ignore"):
        factor = (k[0] * k[1]) / div
    factor = factor.astype(np.float32).reshape(1, 1, out_hw[0], out_hw[1])
    return mx.broadcast_mul(mean, em.const(tag + "divisor", factor), name=name)


def _max_with_mask(em, x, x_shape, out_hw, k, s, p, name):
    """(max, mask) by Caffe's scan: taps in row-major order, a tap wins when strictly greater."""
    mx = em.mx
    h, w = x_shape[2], x_shape[3]
    (oh, ow) = out_hw
    extra = [max((o - 1) * st + kk - size - pd, 0) for o, st, kk, size, pd in zip(out_hw, s, k, (h, w), p)]
    xp = mx.pad(x, mode="constant", pad_width=(0, 0, 0, 0, p[0], extra[0], p[1], extra[1]),
                constant_value=-FLT_MAX, name=em.sub("pad"))
    index = np.full((h + p[0] + extra[0], w + p[1] + extra[1]), -1.0, np.float32)
    index[p[0]:p[0] + h, p[1]:p[1] + w] = np.arange(h * w, dtype=np.float32).reshape(h, w)
    zeros = mx.zeros_like(xp, name=em.sub("zeros"))
    index = mx.broadcast_add(zeros, em.const("index", index[None, None]), name=em.sub("index"))
    taps = [(i, j) for i in range(k[0]) for j in range(k[1])]
    best = idx = None
    for t, (i, j) in enumerate(taps):
        last = t == len(taps) - 1
        window = dict(begin=(None, None, i, j), end=(None, None, i + s[0] * (oh - 1) + 1, j + s[1] * (ow - 1) + 1),
                      step=(None, None, s[0], s[1]))
        value = mx.slice(xp, name=name if last and t == 0 else em.sub(f"tap{i}_{j}"), **window)
        where = mx.slice(index, name=em.sub("mask") if last and t == 0 else em.sub(f"tap{i}_{j}_index"), **window)
        if t == 0:
            best, idx = value, where
            continue
        wins = mx.broadcast_greater(value, best, name=em.sub(f"tap{i}_{j}_wins"))
        best = mx.where(wins, value, best, name=name if last else em.sub(f"tap{i}_{j}_max"))
        idx = mx.where(wins, where, idx, name=em.sub("mask") if last else em.sub(f"tap{i}_{j}_argmax"))
    return best, idx


def _global_max_with_mask(em, x, x_shape, name):
    """(max, mask) over the whole plane: the smallest flat index holding the maximum."""
    mx = em.mx
    plane = x_shape[2] * x_shape[3]
    flat = mx.reshape(x, shape=(0, 0, -1), name=em.sub("flat"))
    top = mx.max(flat, axis=2, keepdims=True, name=em.sub("max"))
    hit = mx.broadcast_equal(flat, top, name=em.sub("hit"))
    index = mx.broadcast_like(em.const("index", np.arange(plane, dtype=np.float32).reshape(1, 1, plane)), flat,
                              name=em.sub("index"))
    past = mx._internal._plus_scalar(index, scalar=float(plane), name=em.sub("index_past"))
    first = mx.min(mx.where(hit, index, past, name=em.sub("hit_index")), axis=2, keepdims=True,
                   name=em.sub("first"))
    return (mx.reshape(top, shape=(0, 0, 1, 1), name=name),
            mx.reshape(first, shape=(0, 0, 1, 1), name=em.sub("mask")))


@register
class Pooling(LayerHandler):
    types = ("Pooling",)
    n_tops = (1, 2)
    fork_fields = ("pooling_param.ceil_mode",)
    mx_ops = ("Pooling", "slice", "Pad", "broadcast_mul", "BlockGrad", "zeros_like", "broadcast_add",
              "broadcast_greater", "where", "Reshape", "max", "min", "broadcast_equal", "broadcast_like",
              "_plus_scalar")
    notes = ("MAX and AVE (not STOCHASTIC); round_mode and the forks' ceil_mode; MAX with a second top "
             "(Caffe's argmax mask)")

    def check(self, node):
        """Caffe's PoolingLayer::LayerSetUp limits (and a nonzero stride, which Caffe divides by)."""
        p = node.param.pooling_param
        where = "pooling_param"
        problems = []
        if p.pool == p.STOCHASTIC:
            problems.append("STOCHASTIC pooling is not supported")
        for single, h, w in (("stride", "stride_h", "stride_w"), ("pad", "pad_h", "pad_w")):
            problems += pair_fields(p, where, single, h, w)
        problems += zero_fields(p, where, ("stride", "stride_h", "stride_w"))
        problems += int_fields(p, where, ("kernel_size", "kernel_h", "kernel_w", "stride", "stride_h", "stride_w",
                                          "pad", "pad_h", "pad_w"))
        if p.global_pooling:
            if p.HasField("kernel_size") or p.HasField("kernel_h") or p.HasField("kernel_w"):
                problems.append("global pooling takes no kernel size")
            if p.pad or p.pad_h or p.pad_w:
                problems.append("global pooling with padding")
            if p.stride_h > 1 or p.stride_w > 1 or p.stride > 1:
                problems.append("global pooling with a stride other than 1")
        else:
            problems += pair_fields(p, where, "kernel_size", "kernel_h", "kernel_w")
            problems += zero_fields(p, where, ("kernel_size", "kernel_h", "kernel_w"))
            if spatial(p, "kernel_size", "kernel_h", "kernel_w") is None:
                problems.append("kernel size is missing")
        if p.HasField("round_mode") and p.HasField("ceil_mode") and (p.round_mode == p.CEIL) != p.ceil_mode:
            problems.append(f"round_mode {p.RoundMode.Name(p.round_mode)} contradicts ceil_mode "
                            f"{str(p.ceil_mode).lower()}")
        if len(node.tops) == 2 and p.pool != p.MAX:
            problems.append("a second top (the argmax mask) exists only for MAX pooling")
        return problems

    def output_shapes(self, node, in_shapes):
        x = in_shapes[0]
        need_rank(x, 4)
        kernel, stride, pad = geometry(node, x)
        if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
            raise ValueError(f"pad {pad} must be smaller than the kernel {kernel}")
        if max(x[2] + 2 * pad[0], x[3] + 2 * pad[1], *kernel) > INT32_MAX:
            raise ValueError("a padded size or kernel exceeds Caffe's int range")
        out = (x[0], x[1]) + pooled_hw(x, kernel, stride, pad, rounds_up(node.param.pooling_param))
        return [out] * len(node.tops)

    def emit(self, node, inputs, em):
        p = node.param.pooling_param
        nm = em.name(node)
        x_shape = em.in_shapes(node)[0]
        out_hw = em.out_shapes(node)[0][2:]
        pool_type = "max" if p.pool == p.MAX else "avg"
        kernel, stride, pad = geometry(node, x_shape)
        if len(node.tops) == 2:
            if p.global_pooling:
                return list(_global_max_with_mask(em, inputs[0], x_shape, nm))
            return list(_max_with_mask(em, inputs[0], x_shape, out_hw, kernel, stride, pad, nm))
        if p.global_pooling:
            return [em.mx.Pooling(inputs[0], global_pool=True, kernel=(1, 1), pool_type=pool_type, name=nm)]
        return [emit_pool(em, inputs[0], x_shape, out_hw, kernel, stride, pad, rounds_up(p), pool_type, nm)]

    def reduction_length(self, node, in_shapes, out_shapes):
        (kh, kw), _, _ = geometry(node, in_shapes[0])
        return kh * kw if node.param.pooling_param.pool != node.param.pooling_param.MAX else 1

def spp_levels(node, x_shape):
    """Per pyramid level: (kernel, stride, pad, out_hw). Level l pools into 2^l x 2^l bins with
    kernel ceil(size / 2^l), pad (kernel * 2^l - size + 1) // 2, stride = kernel, and Caffe's
    usual pooling (ceil rounding, pad correction), as SPP builds its inner Pooling layers."""
    levels = []
    for level in range(node.param.spp_param.pyramid_height):
        bins = 2 ** level
        kernel = tuple(-(-size // bins) for size in x_shape[2:])
        pad = tuple((k * bins - size + 1) // 2 for k, size in zip(kernel, x_shape[2:]))
        if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
            raise ValueError(f"level {level} ({bins}x{bins} bins) of a {x_shape[2]}x{x_shape[3]} input needs pad "
                             f"{pad} >= kernel {kernel}, which Caffe's pooling refuses")
        levels.append((kernel, kernel, pad, pooled_hw(x_shape, kernel, kernel, pad, True)))
    return levels


@register
class SPP(LayerHandler):
    """Spatial pyramid pooling: each level pooled, flattened, and the levels concatenated."""

    types = ("SPP",)
    mx_ops = ("Pooling", "slice", "Pad", "broadcast_mul", "BlockGrad", "Reshape", "Concat")
    notes = "MAX and AVE; pyramid_height 1 keeps the 4-D pooled map, as Caffe does"

    def check(self, node):
        p = node.param.spp_param
        problems = []
        if not p.HasField("pyramid_height") or p.pyramid_height < 1:
            problems.append("spp_param.pyramid_height must be at least 1")
        if p.pool == p.STOCHASTIC:
            problems.append("STOCHASTIC pooling is not supported")
        return problems

    def output_shapes(self, node, in_shapes):
        x = in_shapes[0]
        if len(x) != 4:
            raise ValueError(f"expects a 4-D input, got {list(x)}")
        levels = spp_levels(node, x)
        if len(levels) == 1:
            return [(x[0], x[1]) + levels[0][3]]
        return [(x[0], sum(x[1] * oh * ow for _, _, _, (oh, ow) in levels))]

    def emit(self, node, inputs, em):
        p = node.param.spp_param
        nm = em.name(node)
        x_shape = em.in_shapes(node)[0]
        pool_type = "max" if p.pool == p.MAX else "avg"
        levels = spp_levels(node, x_shape)
        if len(levels) == 1:
            kernel, stride, pad, out_hw = levels[0]
            return [emit_pool(em, inputs[0], x_shape, out_hw, kernel, stride, pad, True, pool_type, nm)]
        flat = []
        for level, (kernel, stride, pad, out_hw) in enumerate(levels):
            tag = f"level{level}_"
            pooled = emit_pool(em, inputs[0], x_shape, out_hw, kernel, stride, pad, True, pool_type,
                               em.sub(tag + "pool"), tag)
            flat.append(em.mx.reshape(pooled, shape=(0, -1), name=em.sub(tag + "flat")))
        return [em.mx.concat(*flat, dim=1, name=nm)]
