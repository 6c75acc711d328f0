"""Pooling (MAX, AVE; ceil or floor rounding; global), with Caffe's exact edge rules.

Sizes round up by default and the last window is dropped when it would start in the
bottom/right padding. Without padding, a ceil-rounded last window can lie wholly
outside the map: Caffe then writes -FLT_MAX (MAX, its initial value) or 0/0 = NaN
(AVE, divisor 0), and this reproduces those values rather than hiding them.
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
    if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
        raise call.error(f"pad {pad} must be smaller than the kernel {kernel}")
    rnd = math.floor if p.round_mode == p.FLOOR else math.ceil
    out = [rnd((size + 2 * pd - k) / s) + 1 for size, k, s, pd in zip((height, width), kernel, stride, pad)]
    if pad != (0, 0):
        for a, size in enumerate((height, width)):
            if (out[a] - 1) * stride[a] >= size + pad[a]:
                out[a] -= 1
    return kernel, stride, pad, tuple(out)


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


def _divisor(size, k, s, p, n_out):
    """Per-position window length, clipped to size + pad; <= 0 when the window misses the map."""
    start = np.arange(n_out) * s - p
    end = np.minimum(start + k, size + p)
    return (end - start).astype(np.float64)


@register("Pooling")
def pooling(call):
    call.expect_bottoms(1)
    x = call.bottoms[0]
    if x.ndim != 4:
        raise call.error(f"needs a 4-D NCHW bottom, got shape {list(x.shape)}")
    p = call.param.pooling_param
    method = p.PoolMethod.Name(p.pool)
    if method not in ("MAX", "AVE"):
        raise call.error(f"pool {method} is not supported (test-phase STOCHASTIC is a weighted average "
                         f"over the window; only MAX and AVE are implemented)")
    kernel, stride, pad, out = geometry(call, *x.shape[2:])
    if min(out) < 1:
        raise call.error(f"a {x.shape[2]}x{x.shape[3]} input gives an empty {out[0]}x{out[1]} output")
    with np.errstate(invalid="ignore", divide="ignore"):
        return [pool2d(x, method, kernel, stride, pad, out)]
