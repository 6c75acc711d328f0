"""Normalisations: the fork's BN, BVLC BatchNorm, LRN, MVN."""
import numpy as np

from .pooling import pool2d
from .registry import register

BN_BLOB3 = ("inv_std", "variance")


def _channel_view(x, vec):
    return vec.reshape((1, -1) + (1,) * (x.ndim - 2))


@register("BN")
def bn(call):
    """Fork BN at test time (or frozen): blob 3 is the running *inverse std* and eps is unused.

    With options bn_blob3="variance" (other forks' BN), blob 3 is a variance: 1/sqrt(v + eps).
    """
    call.expect_bottoms(1)
    call.expect_blobs(4)
    x = call.bottoms[0]
    if x.ndim < 2:
        raise call.error(f"needs a bottom with a channel axis, got shape {list(x.shape)}")
    c = x.shape[1]
    scale, shift, mean, b3 = (call.blob(i, (1, c, 1, 1)).reshape(c) for i in range(4))
    mode = call.options.get("bn_blob3", "inv_std")
    if mode == "inv_std":
        inv_std = b3
    elif mode == "variance":
        inv_std = 1.0 / np.sqrt(b3 + call.dtype(call.param.bn_param.eps))
    else:
        raise call.error(f"bn_blob3 must be one of {BN_BLOB3}, got {mode!r}")
    y = x - _channel_view(x, mean)
    y *= _channel_view(x, inv_std * scale)
    y += _channel_view(x, shift)
    return [y]


@register("BatchNorm")
def batch_norm(call):
    """Stored statistics are divided by blob 2 (a running weight); a zero weight means 0 and 0."""
    call.expect_bottoms(1)
    x = call.bottoms[0]
    if x.ndim < 2:
        raise call.error(f"needs a bottom with a channel axis, got shape {list(x.shape)}")
    p = call.param.batch_norm_param
    eps = call.dtype(p.eps)
    use_global = p.use_global_stats if p.HasField("use_global_stats") else True  # TEST phase default
    c = x.shape[1]
    call.expect_blobs(3)
    if use_global:
        factor = call.blob(2, (1,))[0]
        inv = 0.0 if factor == 0 else 1.0 / factor
        mean, var = call.blob(0, (c,)) * inv, call.blob(1, (c,)) * inv
    else:
        axes = (0,) + tuple(range(2, x.ndim))
        mean = x.mean(axis=axes)
        var = ((x - _channel_view(x, mean)) ** 2).mean(axis=axes)
    return [(x - _channel_view(x, mean)) / np.sqrt(_channel_view(x, var) + eps)]


@register("LRN")
def lrn(call):
    """ACROSS_CHANNELS: x / (k + alpha/n * sum of squares over n channels)^beta.

    WITHIN_CHANNEL is built in Caffe from an n x n AVE pooling and a Power layer whose
    shift is 1: `k` is ignored there.
    """
    call.expect_bottoms(1)
    x = call.bottoms[0]
    if x.ndim != 4:
        raise call.error(f"needs a 4-D NCHW bottom, got shape {list(x.shape)}")
    p = call.param.lrn_param
    size, alpha, beta = p.local_size, call.dtype(p.alpha), call.dtype(p.beta)
    if size % 2 != 1:
        raise call.error(f"local_size must be odd, got {size}")
    sq = x * x
    half = (size - 1) // 2
    if p.norm_region == p.ACROSS_CHANNELS:
        padded = np.pad(sq, ((0, 0), (half, half), (0, 0), (0, 0)))
        total = np.zeros_like(x)
        for i in range(size):
            total += padded[:, i:i + x.shape[1]]
        scale = call.dtype(p.k) + alpha / size * total
    else:
        avg = pool2d(sq, "AVE", (size, size), (1, 1), (half, half), x.shape[2:])
        scale = 1.0 + alpha * avg
    return [x * scale ** -beta]


@register("MVN")
def mvn(call):
    """Statistics per (n, c) over the remaining axes, or per n over all of C x H x W with
    across_channels. Two passes: mean, then var = E[(x - mean)^2]; eps is added to the std."""
    call.expect_bottoms(1)
    x, p = call.bottoms[0], call.param.mvn_param
    if not 2 <= x.ndim <= 4:
        raise call.error(f"needs a 2-D to 4-D bottom (num, channels, ...), got {list(x.shape)}")
    groups = x.shape[:1] if p.across_channels else x.shape[:2]
    flat = x.reshape(groups + (-1,))
    centred = flat - flat.mean(axis=-1, keepdims=True)
    if p.normalize_variance:
        std = np.sqrt((centred * centred).mean(axis=-1, keepdims=True))
        centred = centred / (std + call.dtype(p.eps))
    return [centred.reshape(x.shape)]
