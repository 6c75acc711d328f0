"""The fork's fused BN, BVLC BatchNorm (+ Scale when fused), Scale, Bias and LRN."""
import numpy as np

from .base import LayerHandler, canonical_axis, register

BN_BLOB3_MODES = ("inv_std", "variance")


def fork_bn_to_mxnet(scale, shift, mean, blob3, eps, blob3_mode="inv_std"):
    """Exact MXNet BatchNorm (gamma, beta, moving_mean, moving_var) for the fork's BN.

    MXNet computes (x - mean) / sqrt(var + eps) * gamma + beta with the layer's own eps.
    For an inverse std s the variance is 1/s^2 - eps (in float64); where that would be
    negative (s > 1/sqrt(eps)) the variance is set to 0 and gamma absorbs s*sqrt(eps),
    which is exact too. Returns (gamma, beta, mean, var, adjusted_channel_count).
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
        with np.errstate(divide="ignore"):
            var = 1.0 / (inv * inv) - eps
        bad = ~(var >= 0) | ~np.isfinite(var)
        gamma = scale.copy()
        var_safe = np.where(bad, 0.0, var)
        gamma[bad] = scale[bad] * inv[bad] * np.sqrt(eps)
        var = var_safe
    out = [a.astype(np.float32) for a in (gamma, shift, mean, var)]
    return (*out, int(bad.sum()))


def _channel_shape(in_shapes):
    return (1, in_shapes[0][1], 1, 1)


def _bn_op(em, x, nm, eps, gamma, beta, mean, var):
    em.arg(f"{nm}_gamma", gamma)
    em.arg(f"{nm}_beta", beta)
    em.aux(f"{nm}_moving_mean", mean)
    em.aux(f"{nm}_moving_var", var)
    return em.mx.BatchNorm(x, eps=float(eps), fix_gamma=False, use_global_stats=True, momentum=0.9, axis=1,
                           name=nm)


@register
class BN(LayerHandler):
    """The Residual Attention Network fork's BN: y = (x - mean) * inv_std * scale + shift."""

    types = ("BN",)
    blob_names = ("scale", "shift", "mean", "inv_std")

    def blob_shapes(self, node, in_shapes):
        return [_channel_shape(in_shapes)] * 4

    def init_blobs(self, node, shapes, rng):
        s = shapes[0]
        return [rng.uniform(0.5, 1.5, s).astype(np.float32), (rng.standard_normal(s) * 0.2).astype(np.float32),
                (rng.standard_normal(s) * 0.5).astype(np.float32), rng.uniform(0.1, 10, s).astype(np.float32)]

    def emit(self, node, inputs, em):
        nm = em.name(node)
        eps = float(node.param.bn_param.eps)
        mode = em.options.get("bn_blob3", "inv_std")
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

    def blob_shapes(self, node, in_shapes):
        c = in_shapes[0][1]
        return [(c,), (c,), (1,)]

    def init_blobs(self, node, shapes, rng):
        c = shapes[0]
        return [(rng.standard_normal(c) * 0.5).astype(np.float32), rng.uniform(0.1, 3, c).astype(np.float32),
                np.ones(1, np.float32)]

    def _global(self, node):
        p = node.param.batch_norm_param
        return p.use_global_stats if p.HasField("use_global_stats") else True

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
    mean = mx.mean(x, axis=axes, keepdims=True, name=f"{nm}_batch_mean")
    centered = mx.broadcast_sub(x, mean, name=f"{nm}_center")
    var = mx.mean(mx.square(centered), axis=axes, keepdims=True, name=f"{nm}_batch_var")
    y = mx.broadcast_div(centered, mx.sqrt(var + eps), name=f"{nm}_norm")
    if np.any(gamma != 1) or np.any(beta != 0):
        g = em.const(f"{nm}_gamma", gamma.reshape(1, -1, 1, 1))
        b = em.const(f"{nm}_beta", beta.reshape(1, -1, 1, 1))
        y = mx.broadcast_add(mx.broadcast_mul(y, g), b, name=nm)
    return y


@register
class BatchNormScale(LayerHandler):
    """A BatchNorm and the Scale that directly follows it, emitted as one MXNet BatchNorm."""

    types = ("_BatchNormScale",)

    def emit(self, node, inputs, em):
        bn, scale = node.fused
        return BatchNorm().emit(node, inputs, em, scale_node=scale)


def _scale_axes(node, param, in_shapes):
    """(axis, shape of the scale blob) for Scale/Bias, from axis and num_axes."""
    x = in_shapes[0]
    axis = canonical_axis(param.axis, len(x))
    if len(in_shapes) > 1:
        s = tuple(in_shapes[1])
        if tuple(x[axis:axis + len(s)]) != s:
            raise ValueError(f"second bottom {list(s)} does not match input {list(x)} from axis {axis}")
        return axis, s
    n = param.num_axes
    shape = tuple(x[axis:]) if n == -1 else tuple(x[axis:axis + n])
    if n != -1 and axis + n > len(x):
        raise ValueError(f"axis {axis} + num_axes {n} exceeds input rank {len(x)}")
    return axis, shape


def _bshape(axis, shape, ndim):
    return (1,) * axis + tuple(shape) + (1,) * (ndim - axis - len(shape))


def _expand(em, sym, axis, shape, ndim):
    """Give a second-bottom symbol leading and trailing unit dims so it broadcasts against x."""
    for _ in range(axis):
        sym = em.mx.expand_dims(sym, axis=0)
    for _ in range(ndim - axis - len(shape)):
        sym = em.mx.expand_dims(sym, axis=-1)
    return sym


class _Affine(LayerHandler):
    n_bottoms = (1, 2)

    def output_shapes(self, node, in_shapes):
        _scale_axes(node, self.param(node), in_shapes)
        return [in_shapes[0]]

    def _operand(self, em, nm, suffix, inputs, blob, axis, shape, ndim):
        if blob is None:
            return _expand(em, inputs[1], axis, shape, ndim)
        return em.param_var(f"{nm}_{suffix}", np.asarray(blob, np.float32).reshape(_bshape(axis, shape, ndim)))


@register
class Scale(_Affine):
    types = ("Scale",)
    blob_names = ("scale", "bias")

    @staticmethod
    def param(node):
        return node.param.scale_param

    def blob_shapes(self, node, in_shapes):
        p = node.param.scale_param
        _, shape = _scale_axes(node, p, in_shapes)
        shapes = [] if len(in_shapes) > 1 else [shape]
        if p.bias_term:
            shapes.append(shape)
        return shapes

    def init_blobs(self, node, shapes, rng):
        blobs = []
        if len(node.bottoms) == 1:
            blobs.append(rng.uniform(0.5, 1.5, shapes[0]).astype(np.float32))
        if node.param.scale_param.bias_term:
            blobs.append((rng.standard_normal(shapes[-1]) * 0.2).astype(np.float32))
        return blobs

    def emit(self, node, inputs, em):
        p = node.param.scale_param
        nm = em.name(node)
        in_shapes = em.in_shapes(node)
        axis, shape = _scale_axes(node, p, in_shapes)
        ndim = len(in_shapes[0])
        blobs = list(em.blobs(node))
        g = self._operand(em, nm, "gamma", inputs, None if len(inputs) > 1 else blobs.pop(0), axis, shape, ndim)
        y = em.mx.broadcast_mul(inputs[0], g, name=f"{nm}_mul" if p.bias_term else nm)
        if p.bias_term:
            b = em.param_var(f"{nm}_beta", np.asarray(blobs.pop(0), np.float32).reshape(_bshape(axis, shape, ndim)))
            y = em.mx.broadcast_add(y, b, name=nm)
        return [y]


@register
class Bias(_Affine):
    types = ("Bias",)
    blob_names = ("bias",)

    @staticmethod
    def param(node):
        return node.param.bias_param

    def blob_shapes(self, node, in_shapes):
        _, shape = _scale_axes(node, node.param.bias_param, in_shapes)
        return [] if len(in_shapes) > 1 else [shape]

    def init_blobs(self, node, shapes, rng):
        return [(rng.standard_normal(s) * 0.2).astype(np.float32) for s in shapes]

    def emit(self, node, inputs, em):
        nm = em.name(node)
        in_shapes = em.in_shapes(node)
        axis, shape = _scale_axes(node, node.param.bias_param, in_shapes)
        ndim = len(in_shapes[0])
        blob = None if len(inputs) > 1 else em.blobs(node)[0]
        b = self._operand(em, nm, "beta", inputs, blob, axis, shape, ndim)
        return [em.mx.broadcast_add(inputs[0], b, name=nm)]


@register
class LRN(LayerHandler):
    types = ("LRN",)

    def check(self, node):
        n = node.param.lrn_param.local_size
        return [] if n % 2 == 1 else [f"lrn_param.local_size {n} must be odd"]

    def emit(self, node, inputs, em):
        p = node.param.lrn_param
        nm = em.name(node)
        x = inputs[0]
        n = int(p.local_size)
        if p.norm_region == 0:
            return [em.mx.LRN(x, alpha=float(p.alpha), beta=float(p.beta), knorm=float(p.k), nsize=n, name=nm)]
        mx = em.mx
        pad = (n - 1) // 2
        sq = mx.square(x, name=f"{nm}_sq")
        avg = mx.Pooling(sq, kernel=(n, n), stride=(1, 1), pad=(pad, pad), pool_type="avg",
                         count_include_pad=True, pooling_convention="valid", name=f"{nm}_pool")
        scale = mx._internal._plus_scalar(mx._internal._mul_scalar(avg, scalar=float(p.alpha)), scalar=1.0)
        return [mx.broadcast_mul(x, mx._internal._power_scalar(scale, scalar=-float(p.beta)), name=nm)]
