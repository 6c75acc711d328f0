"""Eltwise (SUM with coefficients, PROD, MAX) and SENet's Axpy (a * x + y)."""
from .base import LayerHandler, register


@register
class Eltwise(LayerHandler):
    types = ("Eltwise",)
    notes = "SUM (with coefficients), PROD, MAX"
    mx_ops = ("add_n", "elemwise_add", "_mul_scalar", "elemwise_mul", "broadcast_maximum")
    n_bottoms = (2, 1 << 30)

    def check(self, node):
        p = node.param.eltwise_param
        if p.coeff and p.operation != p.SUM:
            return ["eltwise_param.coeff is only allowed with operation SUM"]
        if p.coeff and len(p.coeff) != len(node.bottoms):
            return [f"{len(p.coeff)} coefficients for {len(node.bottoms)} bottoms"]
        return []

    def output_shapes(self, node, in_shapes):
        if any(tuple(s) != tuple(in_shapes[0]) for s in in_shapes):
            raise ValueError("bottoms differ in shape: " + ", ".join(str(list(s)) for s in in_shapes))
        return [in_shapes[0]]

    def emit(self, node, inputs, em):
        p = node.param.eltwise_param
        mx, nm = em.mx, em.name(node)
        if p.operation == p.SUM:
            terms = list(inputs)
            if p.coeff:
                terms = [t if c == 1 else mx._internal._mul_scalar(t, scalar=float(c), name=em.sub(f"coeff{i}"))
                         for i, (t, c) in enumerate(zip(inputs, p.coeff))]
            if em.options.get("optimized") and len(terms) == 2:
                # the optimised model: oneDNN's subgraph backend fuses elemwise_add (not add_n)
                # into the convolution that produces one of its inputs
                return [mx.elemwise_add(*terms, name=nm)]
            return [mx.add_n(*terms, name=nm)]
        op = mx.elemwise_mul if p.operation == p.PROD else mx.broadcast_maximum
        y = inputs[0]
        for i, t in enumerate(inputs[1:], 1):
            y = op(y, t, name=nm if i == len(inputs) - 1 else em.sub(str(i)))
        return [y]


def _axpy_check(in_shapes):
    a, x, y = (tuple(s) for s in in_shapes)
    if tuple(x) != tuple(y):
        raise ValueError(f"x {list(x)} and y {list(y)} differ in shape")
    if len(x) < 2 or len(a) < 2 or a[:2] != x[:2] or any(d != 1 for d in a[2:]):
        raise ValueError(f"the scale {list(a)} must be N x C (x 1 x 1) for an input of {list(x)}")


@register
class Axpy(LayerHandler):
    """SENet's fork layer: top = a * x + y, with bottoms a (N x C x 1 x 1 or N x C: one scale per
    item and channel), x and y (same shape)."""

    types = ("Axpy",)
    n_bottoms = (3, 3)
    mx_ops = ("Reshape", "broadcast_mul", "broadcast_add")

    def output_shapes(self, node, in_shapes):
        _axpy_check(in_shapes)
        return [in_shapes[1]]

    def emit(self, node, inputs, em):
        a_shape, x_shape, _ = em.in_shapes(node)
        a, x, y = inputs
        if len(a_shape) != len(x_shape):
            a = em.mx.reshape(a, shape=(0, 0) + (1,) * (len(x_shape) - 2), name=em.sub("scale"))
        ax = em.mx.broadcast_mul(x, a, name=em.sub("ax"))
        return [em.mx.broadcast_add(ax, y, name=em.name(node))]
