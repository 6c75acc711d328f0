"""Scale and Bias: a per-slice multiplier / offset from a blob or a second bottom."""
import numpy as np

from .base import LayerHandler, need_axis, register


def _scale_axes(node, param, in_shapes):
    """(axis, shape of the scale blob) for Scale/Bias, from axis and num_axes (Caffe's limits:
    axis within the input's axes, num_axes >= -1, axis + num_axes within the rank)."""
    x = in_shapes[0]
    name = type(param).__name__.replace("Parameter", "").lower()
    axis = need_axis(param.axis, len(x), f"{name}_param.axis")
    if len(in_shapes) > 1:
        s = tuple(in_shapes[1])
        if tuple(x[axis:axis + len(s)]) != s:
            raise ValueError(f"second bottom {list(s)} does not match input {list(x)} from axis {axis}")
        return axis, s
    n = param.num_axes
    if n < -1:
        raise ValueError(f"{name}_param.num_axes {n} must be -1 (to the last axis) or at least 0")
    if n != -1 and axis + n > len(x):
        raise ValueError(f"axis {axis} + num_axes {n} exceeds input rank {len(x)}")
    shape = tuple(x[axis:]) if n == -1 else tuple(x[axis:axis + n])
    return axis, shape


def _bshape(axis, shape, ndim):
    return (1,) * axis + tuple(shape) + (1,) * (ndim - axis - len(shape))


class _Affine(LayerHandler):
    n_bottoms = (1, 2)
    mx_ops = ("broadcast_mul", "broadcast_add", "expand_dims")

    def _per_channel(self, node, in_shapes):
        """True where the layer's blobs are one value per channel (axis 1) of its only bottom."""
        if len(in_shapes) != 1 or len(in_shapes[0]) < 2:
            return False
        axis, shape = _scale_axes(node, self.param(node), in_shapes)
        return axis == 1 and tuple(shape) == (in_shapes[0][1],)

    def output_shapes(self, node, in_shapes):
        _scale_axes(node, self.param(node), in_shapes)
        return [in_shapes[0]]

    def _operand(self, em, suffix, inputs, blob, axis, shape, ndim):
        """The multiplier/offset as a symbol shaped to broadcast against the first bottom."""
        if blob is None:
            sym = inputs[1]
            for i in range(axis):
                sym = em.mx.expand_dims(sym, axis=0, name=em.sub(f"{suffix}_lead{i}"))
            for i in range(ndim - axis - len(shape)):
                sym = em.mx.expand_dims(sym, axis=-1, name=em.sub(f"{suffix}_trail{i}"))
            return sym
        return em.param(suffix, np.asarray(blob, np.float32).reshape(_bshape(axis, shape, ndim)))


@register
class Scale(_Affine):
    types = ("Scale",)
    notes = "any axis/num_axes; a blob or a second bottom"
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

    def channel_affine(self, node, in_shapes, options):
        if not self._per_channel(node, in_shapes):
            return None
        a = np.asarray(node.blobs[0], np.float64).reshape(-1)
        b = np.asarray(node.blobs[1], np.float64).reshape(-1) if node.param.scale_param.bias_term else np.zeros_like(a)
        return a, b

    def emit(self, node, inputs, em):
        p = node.param.scale_param
        nm = em.name(node)
        in_shapes = em.in_shapes(node)
        axis, shape = _scale_axes(node, p, in_shapes)
        ndim = len(in_shapes[0])
        blobs = list(em.blobs(node))
        g = self._operand(em, "gamma", inputs, None if len(inputs) > 1 else blobs.pop(0), axis, shape, ndim)
        y = em.mx.broadcast_mul(inputs[0], g, name=em.sub("mul") if p.bias_term else nm)
        if p.bias_term:
            b = em.param("beta", np.asarray(blobs.pop(0), np.float32).reshape(_bshape(axis, shape, ndim)))
            y = em.mx.broadcast_add(y, b, name=nm)
        return [y]


@register
class Bias(_Affine):
    types = ("Bias",)
    notes = "any axis/num_axes; a blob or a second bottom"
    blob_names = ("bias",)

    @staticmethod
    def param(node):
        return node.param.bias_param

    def blob_shapes(self, node, in_shapes):
        _, shape = _scale_axes(node, node.param.bias_param, in_shapes)
        return [] if len(in_shapes) > 1 else [shape]

    def init_blobs(self, node, shapes, rng):
        return [(rng.standard_normal(s) * 0.2).astype(np.float32) for s in shapes]

    def channel_affine(self, node, in_shapes, options):
        if not self._per_channel(node, in_shapes):
            return None
        b = np.asarray(node.blobs[0], np.float64).reshape(-1)
        return np.ones_like(b), b

    def emit(self, node, inputs, em):
        nm = em.name(node)
        in_shapes = em.in_shapes(node)
        axis, shape = _scale_axes(node, node.param.bias_param, in_shapes)
        ndim = len(in_shapes[0])
        blob = None if len(inputs) > 1 else em.blobs(node)[0]
        b = self._operand(em, "beta", inputs, blob, axis, shape, ndim)
        return [em.mx.broadcast_add(inputs[0], b, name=nm)]
