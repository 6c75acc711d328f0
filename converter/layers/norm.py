"""Normalisations: the fork's fused BN, BVLC BatchNorm (+ the Scale fused into it), LRN, MVN."""
import numpy as np

from .base import LayerHandler, need_rank, register

BN_BLOB3_MODES = ("inv_std", "variance")

#: what each --bn-blob3 reading takes the fork BN's 4th blob for, and which forks store it so
BN_BLOB3_READINGS = {
    "inv_std": ("an inverse std", "the Residual Attention Network fork", "stores"),
    "variance": ("a variance", "the TSN and PSPNet forks", "store"),
}


def _other(mode):
    return next(m for m in BN_BLOB3_MODES if m != mode)


def bn_reading_statement(name_map):
    """The one line `convert` prints for a net with fork `BN` layers: which reading of the 4th
    blob it used (recorded per layer in the name map as `bn_blob3`) and how to choose the
    other; None for a net without BN."""
    layers = [name for name, entry in name_map.get("layers", {}).items() if entry.get("bn_blob3")]
    if not layers:
        return None
    mode = name_map["layers"][layers[0]]["bn_blob3"]
    what, forks, verb = BN_BLOB3_READINGS[mode]
    other = _other(mode)
    other_what, other_forks, other_verb = BN_BLOB3_READINGS[other]
    return (f"{len(layers)} BN layer(s): the 4th blob was read as {what}, as {forks} {verb} it; for a net from "
            f"{other_forks}, which {other_verb} {other_what}, convert with --bn-blob3 {other}")


def blob3_problems(blob3, eps, mode):
    """Why the 4th blob's values cannot be what `mode` reads them as ([] if they can).

    Only hard bounds are used: an inverse std 1/sqrt(var + eps) lies in (0, 1/sqrt(eps)],
    a variance is >= 0 and a trained one is not 0 in every channel. Within those bounds the
    two readings overlap (both typically span 0.01..100 over a net's channels), so no
    statistic of the values tells them apart reliably; a Caffe dump compared by verify does.
    """
    v = np.asarray(blob3, np.float64).reshape(-1)
    n = v.size
    finite = np.isfinite(v)
    out = []
    if not finite.all():
        out.append(f"{int((~finite).sum())} of {n} value(s) are not finite")
    v = v[finite]
    if mode == "inv_std":
        low = v <= 0
        if low.any():
            out.append(f"{int(low.sum())} of {n} value(s) are <= 0 (min {v.min():.4g}), but an inverse std is positive")
        limit = 1.0 / np.sqrt(eps)
        high = v > limit * (1 + 1e-6)
        if high.any():
            out.append(f"{int(high.sum())} of {n} value(s) exceed 1/sqrt(eps) = {limit:.4g} (max {v.max():.4g}), "
                       f"which no inverse std 1/sqrt(var + eps) reaches")
    else:
        low = v < 0
        if low.any():
            out.append(f"{int(low.sum())} of {n} value(s) are negative (min {v.min():.4g}), but a variance is >= 0")
        if n and v.size == n and not v.any():
            out.append("every value is 0, which no trained variance is")
    return out


def blob3_warning(blob3, eps, mode):
    """One warning for a BN layer whose 4th blob is implausible under `mode`, or None; it names
    the other reading where the values fit that one."""
    problems = blob3_problems(blob3, eps, mode)
    if not problems:
        return None
    what = BN_BLOB3_READINGS[mode][0]
    other = _other(mode)
    hint = (f"; they fit {BN_BLOB3_READINGS[other][0]}: try --bn-blob3 {other}"
            if not blob3_problems(blob3, eps, other) else "")
    return f"4th blob implausible as {what} (--bn-blob3 {mode}): " + "; ".join(problems) + hint


def fork_bn_to_mxnet(scale, shift, mean, blob3, eps, blob3_mode="inv_std"):
    """Exact MXNet BatchNorm (gamma, beta, moving_mean, moving_var) for the fork's BN.

    MXNet computes (x - mean) / sqrt(var + eps) * gamma + beta with the layer's own eps.
    For an inverse std s the variance is 1/s^2 - eps (in float64) and gamma is
    scale * sign(s): the square loses the sign of a negative s, so gamma carries it, and
    y = (x - mean) * s * scale + shift holds for either sign. Where 1/s^2 - eps would be
    negative (|s| > 1/sqrt(eps)) the variance is set to 0 and gamma absorbs s*sqrt(eps),
    which is exact too (and keeps the sign). Returns (gamma, beta, mean, var,
    adjusted_channel_count).
    """
    scale, shift, mean, blob3 = (np.asarray(a, np.float64).reshape(-1) for a in (scale, shift, mean, blob3))
    if blob3_mode == "variance":
        var = blob3.copy()
        bad = var < 0
        gamma = scale.copy()
        with np.errstate(invalid="ignore"):
            gamma[bad] = scale[bad] * np.sqrt(eps / (var[bad] + eps))
        var[bad] = 0.0
    else:
        inv = blob3
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            var = 1.0 / (inv * inv) - eps
        bad = ~(var >= 0) | ~np.isfinite(var)
        gamma = scale * np.where(inv < 0, -1.0, 1.0)
        var_safe = np.where(bad, 0.0, var)
        with np.errstate(over="ignore", invalid="ignore"):
            gamma[bad] = scale[bad] * inv[bad] * np.sqrt(eps)
        var = var_safe
    with np.errstate(over="ignore"):
        out = [a.astype(np.float32) for a in (gamma, shift, mean, var)]
    return (*out, int(bad.sum()))


def _channel_shape(in_shapes):
    return (1, in_shapes[0][1], 1, 1)


def _bn_op(em, x, nm, eps, gamma, beta, mean, var):
    return em.mx.BatchNorm(x, gamma=em.param("gamma", gamma), beta=em.param("beta", beta),
                           moving_mean=em.param("moving_mean", mean, aux=True),
                           moving_var=em.param("moving_var", var, aux=True),
                           eps=float(eps), fix_gamma=False, use_global_stats=True, momentum=0.9, axis=1, name=nm)


def _calibrated_stats(x, rng):
    """Per-channel (mean, std) of activations, moved off the truth as trained nets are:
    means shifted by N(0, 0.25) stds, stds scaled by a log-uniform factor in [0.5, 2]."""
    axes = (0,) + tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, dtype=np.float64)
    std = np.sqrt(x.var(axis=axes, dtype=np.float64) + 1e-5)
    c = mean.size
    mean = mean + std * rng.normal(0.0, 0.25, c)
    mismatch = np.exp(rng.uniform(np.log(0.5), np.log(2.0), c))
    return mean, std, mismatch


def fork_bn_affine(scale, shift, mean, blob3, eps, blob3_mode="inv_std"):
    """The fork BN as y = x * a + b per channel (float64): a = scale * inv_std, b = shift - mean * a,
    the inverse std being blob 3 itself, or 1/sqrt(blob3 + eps) where blob 3 is a variance."""
    scale, shift, mean, blob3 = (np.asarray(v, np.float64).reshape(-1) for v in (scale, shift, mean, blob3))
    inv_std = blob3 if blob3_mode == "inv_std" else 1.0 / np.sqrt(blob3 + np.float64(np.float32(eps)))
    a = scale * inv_std
    return a, shift - mean * a


@register
class BN(LayerHandler):
    """The Residual Attention Network fork's BN: y = (x - mean) * inv_std * scale + shift."""

    types = ("BN",)
    blob_names = ("scale", "shift", "mean", "inv_std")
    mx_ops = ("BatchNorm",)
    notes = ("fork BN; 4th blob read as an inverse std (`--bn-blob3 variance` for forks that store "
             "a variance)")

    def output_shapes(self, node, in_shapes):
        need_rank(in_shapes[0], 2, -1)
        return [in_shapes[0]]

    def blob_shapes(self, node, in_shapes):
        return [_channel_shape(in_shapes)] * 4

    def init_blobs(self, node, shapes, rng):
        s = shapes[0]
        return [rng.uniform(0.5, 1.5, s).astype(np.float32), (rng.standard_normal(s) * 0.2).astype(np.float32),
                (rng.standard_normal(s) * 0.5).astype(np.float32), rng.uniform(0.1, 10, s).astype(np.float32)]

    def calibrate(self, node, x, blobs, rng):
        mean, std, mismatch = _calibrated_stats(x, rng)
        shape = blobs[0].shape
        # an inverse std the fork computes, 1/sqrt(var + eps), never exceeds 1/sqrt(eps)
        inv_std = np.minimum(mismatch / std, 1.0 / np.sqrt(float(node.param.bn_param.eps)))
        return [blobs[0], blobs[1], mean.reshape(shape).astype(np.float32), inv_std.reshape(shape).astype(np.float32)]

    def sample_blobs(self, node, shapes, rng, options):
        lo, hi = options.get("inv_std", (0.1, 10.0))
        return [rng.uniform(0.5, 1.5, shapes[0]).astype(np.float32),
                rng.standard_normal(shapes[1]).astype(np.float32),
                rng.standard_normal(shapes[2]).astype(np.float32),
                rng.uniform(lo, hi, shapes[3]).astype(np.float32)]

    def channel_affine(self, node, in_shapes, options):
        return fork_bn_affine(*node.blobs, eps=node.param.bn_param.eps,
                              blob3_mode=options.get("bn_blob3", "inv_std"))

    def emit(self, node, inputs, em):
        nm = em.name(node)
        eps = float(node.param.bn_param.eps)
        mode = em.options.get("bn_blob3", "inv_std")
        em.record(node, "bn_blob3", mode)
        warning = blob3_warning(em.blobs(node)[3], eps, mode)
        if warning:
            em.warn(node, warning)
        gamma, beta, mean, var, adjusted = fork_bn_to_mxnet(*em.blobs(node), eps=eps, blob3_mode=mode)
        if adjusted:
            em.adjust(node, f"{adjusted} channel(s) with inverse std above 1/sqrt(eps): variance set to 0 "
                            f"and gamma scaled by inv_std*sqrt(eps) (exact)")
        return [_bn_op(em, inputs[0], nm, eps, gamma, beta, mean, var)]


def batchnorm_stats(blobs):
    """Caffe BatchNorm divides the stored mean and variance by the factor blob (0 -> zeros)."""
    mean, var, factor = (np.asarray(b, np.float64).reshape(-1) for b in blobs[:3])
    f = float(factor[0]) if factor.size else 1.0
    k = 0.0 if f == 0 else 1.0 / f
    return mean * k, var * k


@register
class BatchNorm(LayerHandler):
    types = ("BatchNorm",)
    blob_names = ("mean", "variance", "factor")
    mx_ops = ("BatchNorm", "mean", "broadcast_sub", "square", "broadcast_div", "sqrt", "_plus_scalar",
              "broadcast_mul", "broadcast_add", "BlockGrad")
    notes = "a directly following in-place per-channel Scale is fused into it"

    def output_shapes(self, node, in_shapes):
        # batch statistics (use_global_stats: false) are taken over axes 0, 2 and 3
        if self._global(node):
            need_rank(in_shapes[0], 2, -1)
        else:
            need_rank(in_shapes[0], 4)
        return [in_shapes[0]]

    def blob_shapes(self, node, in_shapes):
        c = in_shapes[0][1]
        return [(c,), (c,), (1,)]

    def init_blobs(self, node, shapes, rng):
        c = shapes[0]
        return [(rng.standard_normal(c) * 0.5).astype(np.float32), rng.uniform(0.1, 3, c).astype(np.float32),
                np.ones(1, np.float32)]

    def calibrate(self, node, x, blobs, rng):
        mean, std, mismatch = _calibrated_stats(x, rng)
        var = (std / mismatch) ** 2
        factor = blobs[2] if len(blobs) > 2 else np.ones(1, np.float32)
        return [(mean * factor[0]).astype(np.float32), (var * factor[0]).astype(np.float32), factor]

    def sample_blobs(self, node, shapes, rng, options):
        f = options.get("factor", 1.0)
        return [(rng.standard_normal(shapes[0]) * f).astype(np.float32),
                (rng.uniform(0.1, 3, shapes[1]) * f).astype(np.float32), np.full(shapes[2], f, np.float32)]

    def _global(self, node):
        p = node.param.batch_norm_param
        return p.use_global_stats if p.HasField("use_global_stats") else True

    def channel_affine(self, node, in_shapes, options, scale_node=None):
        """Global statistics only (batch statistics are not fixed): a = gamma / sqrt(var + eps),
        b = beta - mean * a, with the fused Scale's gamma and beta where there is one."""
        if not self._global(node):
            return None
        mean, var = batchnorm_stats(node.blobs)
        a = 1.0 / np.sqrt(var + np.float64(np.float32(node.param.batch_norm_param.eps)))
        b = -mean * a
        if scale_node is not None:
            gamma = np.asarray(scale_node.blobs[0], np.float64).reshape(-1)
            beta = (np.asarray(scale_node.blobs[1], np.float64).reshape(-1)
                    if scale_node.param.scale_param.bias_term else 0.0)
            a, b = a * gamma, b * gamma + beta
        return a, b

    def emit(self, node, inputs, em, scale_node=None):
        nm = em.name(node)
        eps = float(node.param.batch_norm_param.eps)
        c = em.in_shapes(node)[0][1]
        gamma, beta = np.ones(c, np.float32), np.zeros(c, np.float32)
        if scale_node is not None:
            sb = em.blobs(scale_node)
            gamma = np.asarray(sb[0], np.float32).reshape(-1)
            if scale_node.param.scale_param.bias_term:
                beta = np.asarray(sb[1], np.float32).reshape(-1)
        if not self._global(node):
            return [_batch_stats_norm(em, inputs[0], nm, eps, gamma, beta)]
        mean, var = batchnorm_stats(em.blobs(node))
        return [_bn_op(em, inputs[0], nm, eps, gamma, beta, mean.astype(np.float32), var.astype(np.float32))]


def _batch_stats_norm(em, x, nm, eps, gamma, beta):
    """use_global_stats: false at test time: Caffe normalizes with the batch's own statistics."""
    mx = em.mx
    axes = (0, 2, 3)
    affine = bool(np.any(gamma != 1) or np.any(beta != 0))
    mean = mx.mean(x, axis=axes, keepdims=True, name=em.sub("batch_mean"))
    centered = mx.broadcast_sub(x, mean, name=em.sub("center"))
    var = mx.mean(mx.square(centered, name=em.sub("square")), axis=axes, keepdims=True, name=em.sub("batch_var"))
    std = mx.sqrt(mx._internal._plus_scalar(var, scalar=float(eps), name=em.sub("var_eps")), name=em.sub("std"))
    y = mx.broadcast_div(centered, std, name=em.sub("norm") if affine else nm)
    if affine:
        g = em.const("gamma", gamma.reshape(1, -1, 1, 1))
        b = em.const("beta", beta.reshape(1, -1, 1, 1))
        y = mx.broadcast_add(mx.broadcast_mul(y, g, name=em.sub("scaled")), b, name=nm)
    return y


@register
class BatchNormScale(LayerHandler):
    """A BatchNorm and the Scale that directly follows it, emitted as one MXNet BatchNorm."""

    types = ("_BatchNormScale",)
    mx_ops = BatchNorm.mx_ops

    def channel_affine(self, node, in_shapes, options):
        bn, scale = node.fused
        return BatchNorm().channel_affine(node, in_shapes, options, scale_node=scale)

    def emit(self, node, inputs, em):
        bn, scale = node.fused
        return BatchNorm().emit(node, inputs, em, scale_node=scale)


#: the BatchNorm eps a non-4-D per-channel affine is emitted with (gamma absorbs it)
AFFINE_EPS = 1e-5


@register
class ChannelAffine(LayerHandler):
    """Made by the optimiser (converter/optimize.py) from a layer whose `channel_affine` is
    fixed but which follows no layer it could fold into: y = x * a + b per channel, blobs
    (a, b). On a 4-D blob it is a depthwise 1x1 Convolution (weight a, bias b): oneDNN runs
    it in one pass on its blocked layout, fuses a following ReLU into it at bind time, and
    MXNet's int8 quantization quantizes it like any convolution. Other ranks get an MXNet
    BatchNorm with mean 0, variance 1 and gamma a * sqrt(1 + eps)."""

    types = ("_ChannelAffine",)
    mx_ops = ("Convolution", "BatchNorm")

    def emit(self, node, inputs, em):
        a, b = (np.asarray(v, np.float64).reshape(-1) for v in node.blobs)
        c = a.size
        if len(em.in_shapes(node)[0]) == 4:
            return [em.mx.Convolution(inputs[0], weight=em.param("weight", a.reshape(c, 1, 1, 1)),
                                      bias=em.param("bias", b), kernel=(1, 1), num_filter=c, num_group=c,
                                      name=em.name(node))]
        gamma = a * np.sqrt(1.0 + np.float64(np.float32(AFFINE_EPS)))
        return [em.mx.BatchNorm(inputs[0], gamma=em.param("gamma", gamma), beta=em.param("beta", b),
                                moving_mean=em.param("moving_mean", np.zeros(c), aux=True),
                                moving_var=em.param("moving_var", np.ones(c), aux=True), eps=AFFINE_EPS,
                                fix_gamma=False, use_global_stats=True, momentum=0.9, axis=1, name=em.name(node))]


@register
class LRN(LayerHandler):
    types = ("LRN",)
    mx_ops = ("LRN", "square", "Pooling", "_mul_scalar", "_plus_scalar", "_power_scalar", "broadcast_mul")
    notes = "local_size must be odd"

    def check(self, node):
        n = node.param.lrn_param.local_size
        return [] if n % 2 == 1 else [f"lrn_param.local_size {n} must be odd"]

    def output_shapes(self, node, in_shapes):
        need_rank(in_shapes[0], 4)  # Caffe: "Input must have 4 axes"
        return [in_shapes[0]]

    def emit(self, node, inputs, em):
        p = node.param.lrn_param
        nm = em.name(node)
        x = inputs[0]
        n = int(p.local_size)
        if p.norm_region == 0:
            return [em.mx.LRN(x, alpha=float(p.alpha), beta=float(p.beta), knorm=float(p.k), nsize=n, name=nm)]
        mx = em.mx
        pad = (n - 1) // 2
        sq = mx.square(x, name=em.sub("sq"))
        avg = mx.Pooling(sq, kernel=(n, n), stride=(1, 1), pad=(pad, pad), pool_type="avg",
                         count_include_pad=True, pooling_convention="valid", name=em.sub("pool"))
        scale = mx._internal._plus_scalar(mx._internal._mul_scalar(avg, scalar=float(p.alpha), name=em.sub("alpha")),
                                          scalar=1.0, name=em.sub("one_plus"))
        return [mx.broadcast_mul(x, mx._internal._power_scalar(scale, scalar=-float(p.beta), name=em.sub("pow")),
                                 name=nm)]


@register
class MVN(LayerHandler):
    """Mean-variance normalisation per (n, c) over the rest, or per n with across_channels:
    y = (x - mean) / (std + eps), with std the square root of E[(x - mean)^2]."""

    types = ("MVN",)
    mx_ops = ("Reshape", "mean", "broadcast_sub", "square", "sqrt", "_plus_scalar", "broadcast_div")

    def output_shapes(self, node, in_shapes):
        x = in_shapes[0]
        if not 2 <= len(x) <= 4:
            raise ValueError(f"expects a 2-D to 4-D input (Caffe's num/channels layout), got {list(x)}")
        return [x]

    def emit(self, node, inputs, em):
        p = node.param.mvn_param
        mx = em.mx
        x_shape = em.in_shapes(node)[0]
        grouped = (0, -1) if p.across_channels else (0, 0, -1)
        axis = len(grouped) - 1
        flat = mx.reshape(inputs[0], shape=grouped, name=em.sub("flat"))
        mean = mx.mean(flat, axis=axis, keepdims=True, name=em.sub("mean"))
        y = mx.broadcast_sub(flat, mean, name=em.sub("centred"))
        if p.normalize_variance:
            var = mx.mean(mx.square(y, name=em.sub("square")), axis=axis, keepdims=True, name=em.sub("variance"))
            std = mx.sqrt(var, name=em.sub("std"))
            y = mx.broadcast_div(y, mx._internal._plus_scalar(std, scalar=float(p.eps), name=em.sub("std_eps")),
                                 name=em.sub("normalised"))
        shape = (0,) + tuple(x_shape[1:])
        return [mx.reshape(y, shape=shape, name=em.name(node))]
