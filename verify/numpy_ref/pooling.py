"""Pooling (MAX, AVE; ceil or floor rounding; global; MAX's mask top) and SPP, with
Caffe's exact edge rules.

Sizes round up by default (floor with `round_mode: FLOOR` or the forks' `ceil_mode: false`)
and the last window is dropped when it would start in the bottom/right padding. Without
padding, a ceil-rounded last window can lie wholly outside the map: Caffe then writes
-FLT_MAX (MAX, its initial value) or 0/0 = NaN (AVE, divisor 0), and this reproduces those
values rather than hiding them.
"""
import math

import numpy as np

from .call import FLT_MAX
from .conv import window_views
from .registry import register


def geometry(call, height, width):
    """(kernel, stride, pad, out) as (h, w) pairs for a bottom of height x width."""
    p = call.param.pooling_param
    if p.global_pooling:
        if p.HasField("kernel_size") or p.HasField("kernel_h") or p.HasField("kernel_w"):
            raise call.error("global_pooling takes the whole map: do not give a kernel size")
        kernel = (height, width)
    else:
        has_hw = p.HasField("kernel_h") and p.HasField("kernel_w")
        if p.HasField("kernel_size") == has_hw:
            raise call.error("pooling_param needs kernel_size or kernel_h and kernel_w, not both")
        kernel = (p.kernel_h, p.kernel_w) if p.HasField("kernel_h") else (p.kernel_size,) * 2
    pad = (p.pad_h, p.pad_w) if p.HasField("pad_h") or p.HasField("pad_w") else (p.pad,) * 2
    stride = (p.stride_h, p.stride_w) if p.HasField("stride_h") or p.HasField("stride_w") else (p.stride,) * 2
    if p.global_pooling and (pad != (0, 0) or stride != (1, 1)):
        raise call.error("global_pooling needs pad 0 and stride 1")
    if min(kernel) < 1 or min(stride) < 1:
        raise call.error(f"kernel {kernel} and stride {stride} must be positive")
    floor = p.round_mode == p.FLOOR or (p.HasField("ceil_mode") and not p.ceil_mode)
    if p.HasField("round_mode") and p.HasField("ceil_mode") and (p.round_mode == p.FLOOR) == p.ceil_mode:
        raise call.error("round_mode and ceil_mode contradict each other")
    return kernel, stride, pad, pooled_size(call, (height, width), kernel, stride, pad, floor)


def pooled_size(call, size_hw, kernel, stride, pad, floor=False):
    """Caffe's output size: rounded, then the last window dropped if it starts in the end padding."""
    if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
        raise call.error(f"pad {pad} must be smaller than the kernel {kernel}")
    rnd = math.floor if floor else math.ceil
    out = [rnd((size + 2 * pd - k) / s) + 1 for size, k, s, pd in zip(size_hw, kernel, stride, pad)]
    if pad != (0, 0):
        for a, size in enumerate(size_hw):
            if (out[a] - 1) * stride[a] >= size + pad[a]:
                out[a] -= 1
    return tuple(out)


def pool2d(x, method, kernel, stride, pad, out):
    """Caffe's MAX/AVE pooling of a 4-D array with given geometry (no validation)."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel, stride, pad, out
    h, w = x.shape[2:]
    extra = (max(0, (oh - 1) * sh + kh - ph - h), max(0, (ow - 1) * sw + kw - pw - w))
    n, c = x.shape[:2]
    if method == "MAX":
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph + extra[0]), (pw, pw + extra[1])), constant_values=np.nan)
        y = np.full((n, c, oh, ow), -FLT_MAX, dtype=x.dtype)
        for _, _, view in window_views(xp, kernel, stride, (1, 1), out):
            np.fmax(y, view, out=y)  # fmax skips the NaN fill, as Caffe's `>` skips NaN
        return y
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph + extra[0]), (pw, pw + extra[1])))
    y = np.zeros((n, c, oh, ow), dtype=x.dtype)
    for _, _, view in window_views(xp, kernel, stride, (1, 1), out):
        y += view
    return y / np.outer(_divisor(h, kh, sh, ph, oh), _divisor(w, kw, sw, pw, ow)).astype(x.dtype)


def max_with_mask(x, kernel, stride, pad, out):
    """Caffe's MAX scan with its mask: per window, start at -FLT_MAX and index -1; visit the
    taps row by row; a tap wins when strictly greater (ties keep the first, NaN never wins).
    The mask is the flat index h * W + w in the unpadded plane."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel, stride, pad, out
    n, c, h, w = x.shape
    extra = (max(0, (oh - 1) * sh + kh - ph - h), max(0, (ow - 1) * sw + kw - pw - w))
    widths = ((ph, ph + extra[0]), (pw, pw + extra[1]))
    xp = np.pad(x, ((0, 0), (0, 0)) + widths, constant_values=np.nan)
    index = np.pad(np.arange(h * w, dtype=np.float64).reshape(1, 1, h, w), ((0, 0), (0, 0)) + widths,
                   constant_values=-1)
    best = np.full((n, c, oh, ow), -FLT_MAX, dtype=x.dtype)
    mask = np.full((n, c, oh, ow), -1.0, dtype=x.dtype)
    taps = zip(window_views(xp, kernel, stride, (1, 1), out), window_views(index, kernel, stride, (1, 1), out))
    for (_, _, view), (_, _, where) in taps:
        wins = view > best
        best = np.where(wins, view, best)
        mask = np.where(wins, where, mask)
    return best, mask


def _divisor(size, k, s, p, n_out):
    """Per-position window length, clipped to size + pad; <= 0 when the window misses the map."""
    start = np.arange(n_out) * s - p
    end = np.minimum(start + k, size + p)
    return (end - start).astype(np.float64)


def _method(call, p):
    method = p.PoolMethod.Name(p.pool)
    if method not in ("MAX", "AVE"):
        raise call.error(f"pool {method} is not supported (test-phase STOCHASTIC is a weighted average "
                         f"over the window; only MAX and AVE are implemented)")
    return method


def _bottom4d(call):
    call.expect_bottoms(1)
    x = call.bottoms[0]
    if x.ndim != 4:
        raise call.error(f"needs a 4-D NCHW bottom, got shape {list(x.shape)}")
    return x


@register("Pooling")
def pooling(call):
    x = _bottom4d(call)
    p = call.param.pooling_param
    method = _method(call, p)
    n_tops = len(call.node.tops)
    if n_tops not in (1, 2) or (n_tops == 2 and method != "MAX"):
        raise call.error(f"{n_tops} tops: MAX pooling has 1 or 2 (the mask), AVE pooling 1")
    kernel, stride, pad, out = geometry(call, *x.shape[2:])
    if min(out) < 1:
        raise call.error(f"a {x.shape[2]}x{x.shape[3]} input gives an empty {out[0]}x{out[1]} output")
    if n_tops == 2:
        return list(max_with_mask(x, kernel, stride, pad, out))
    with np.errstate(invalid="ignore", divide="ignore"):
        return [pool2d(x, method, kernel, stride, pad, out)]


@register("SPP")
def spp(call):
    """Level l pools into 2^l x 2^l bins: kernel ceil(size / 2^l), pad (kernel 2^l - size + 1) / 2
    (integer division), stride = kernel, then Caffe's ordinary pooling; levels are flattened
    per item and concatenated. One level returns the pooled 4-D map itself."""
    x = _bottom4d(call)
    p = call.param.spp_param
    method = _method(call, p)
    if p.pyramid_height < 1:
        raise call.error("spp_param.pyramid_height must be at least 1")
    levels = []
    for level in range(p.pyramid_height):
        bins = 2 ** level
        kernel = tuple(-(-size // bins) for size in x.shape[2:])
        pad = tuple((k * bins - size + 1) // 2 for k, size in zip(kernel, x.shape[2:]))
        out = pooled_size(call, x.shape[2:], kernel, kernel, pad)
        with np.errstate(invalid="ignore", divide="ignore"):
            levels.append(pool2d(x, method, kernel, kernel, pad, out))
    if len(levels) == 1:
        return levels
    return [np.concatenate([y.reshape(x.shape[0], -1) for y in levels], axis=1)]
