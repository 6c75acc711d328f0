"""Eltwise: SUM (with optional per-bottom coefficients), PROD, MAX; and SENet's Axpy."""
import numpy as np

from .registry import register


@register("Eltwise")
def eltwise(call):
    xs, p = call.bottoms, call.param.eltwise_param
    if len(xs) < 2:
        raise call.error(f"needs at least 2 bottoms, got {len(xs)}")
    shapes = {x.shape for x in xs}
    if len(shapes) > 1:
        raise call.error(f"bottom shapes differ: {[list(x.shape) for x in xs]}")
    op = p.EltwiseOp.Name(p.operation)
    if p.coeff and (op != "SUM" or len(p.coeff) != len(xs)):
        raise call.error(f"coeff is for SUM only, one per bottom ({len(xs)}); got {len(p.coeff)} with {op}")
    if op == "SUM":
        coeff = list(p.coeff) or [1.0] * len(xs)
        y = np.zeros_like(xs[0])
        for c, x in zip(coeff, xs):
            y += c * x if c != 1 else x
        return [y]
    reduce = np.multiply if op == "PROD" else np.maximum
    y = xs[0]
    for x in xs[1:]:
        y = reduce(y, x)
    return [y]


@register("Axpy")
def axpy(call):
    """top = y + a[n, c] * x[n, c, ...]: bottom 0 holds one scale per item and channel."""
    call.expect_bottoms(3)
    a, x, y = call.bottoms
    if x.shape != y.shape or x.ndim < 2:
        raise call.error(f"x {list(x.shape)} and y {list(y.shape)} must have one shape, with channels")
    if a.shape[:2] != x.shape[:2] or a.size != x.shape[0] * x.shape[1]:
        raise call.error(f"the scale {list(a.shape)} must be N x C (x 1 x 1) for x {list(x.shape)}")
    return [y + a.reshape(x.shape[:2] + (1,) * (x.ndim - 2)) * x]
