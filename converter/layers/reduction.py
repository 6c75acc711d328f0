"""Reductions: Reduction (SUM, ASUM, SUMSQ, MEAN over the trailing axes) and ArgMax (top k).

ArgMax follows Caffe's order exactly: Caffe sorts (value, index) pairs in descending order,
so among equal values the larger index comes first. MXNet's `topk` does not promise any
order for ties, so the k winners are taken one at a time: the largest value, then the
largest index holding it, which is then masked out with -inf for the next round.
"""
import numpy as np

from .base import LayerHandler, canonical_axis, register


def _reduced_axes(node, shape):
    axis = canonical_axis(node.param.reduction_param.axis, len(shape))
    if not 0 <= axis < len(shape):
        raise ValueError(f"axis {node.param.reduction_param.axis} is out of range for a {len(shape)}-D input")
    if axis == 0:
        raise ValueError("axis 0 reduces the whole blob to a 0-d blob (shape ()), which MXNet 1.x symbols cannot "
                         "hold; Caffe's other axes (1 and on) convert")
    return tuple(range(axis, len(shape)))


@register
class Reduction(LayerHandler):
    """One value per index of the leading axes: every axis from `axis` on is reduced, then
    multiplied by `coeff`."""

    types = ("Reduction",)
    mx_ops = ("sum", "abs", "square", "mean", "_mul_scalar")
    notes = "SUM, ASUM, SUMSQ, MEAN; not axis 0 (a 0-d result)"

    def output_shapes(self, node, in_shapes):
        axes = _reduced_axes(node, in_shapes[0])
        return [tuple(in_shapes[0][:axes[0]])]

    def emit(self, node, inputs, em):
        p = node.param.reduction_param
        mx, nm = em.mx, em.name(node)
        axes = _reduced_axes(node, em.in_shapes(node)[0])
        last = nm if p.coeff == 1 else em.sub("reduced")
        x = inputs[0]
        if p.operation == p.MEAN:
            y = mx.mean(x, axis=axes, name=last)
        else:
            if p.operation == p.ASUM:
                x = mx.abs(x, name=em.sub("abs"))
            elif p.operation == p.SUMSQ:
                x = mx.square(x, name=em.sub("square"))
            y = mx.sum(x, axis=axes, name=last)
        if p.coeff != 1:
            y = mx._internal._mul_scalar(y, scalar=float(p.coeff), name=nm)
        return [y]


def _argmax_plan(node, shape):
    """(work axis or None for the flattened C*H*W, its size) with Caffe's checks."""
    p = node.param.argmax_param
    if p.HasField("axis"):
        axis = canonical_axis(p.axis, len(shape))
        if not 0 <= axis < len(shape):
            raise ValueError(f"axis {p.axis} is out of range for a {len(shape)}-D input")
        size = shape[axis]
    else:
        axis, size = None, int(np.prod(shape[1:]))
    if p.top_k > size:
        raise ValueError(f"top_k {p.top_k} exceeds the {size} values it chooses from")
    return axis, size


@register
class ArgMax(LayerHandler):
    """Indices (as float) of the top_k values, in descending order. Without `axis` it works on
    each item's flattened C*H*W and its top is N x 1 x top_k (x 1), with out_max_val
    N x 2 x top_k (channel 0 the indices, channel 1 the values); with `axis`, that axis becomes
    top_k long and out_max_val gives the values only."""

    types = ("ArgMax",)
    mx_ops = ("Reshape", "max", "broadcast_equal", "broadcast_like", "where", "_plus_scalar", "zeros_like",
              "Concat", "BlockGrad", "_copy")
    notes = "ties ordered as Caffe (larger index first); over axis 0 the batch size is fixed at conversion"

    def check(self, node):
        k = node.param.argmax_param.top_k
        return [] if k >= 1 else [f"argmax_param.top_k {k} must be at least 1"]

    def output_shapes(self, node, in_shapes):
        x = in_shapes[0]
        p = node.param.argmax_param
        axis, _ = _argmax_plan(node, x)
        if axis is not None:
            return [tuple(p.top_k if a == axis else d for a, d in enumerate(x))]
        out = [1] * max(len(x), 3)
        out[0], out[1], out[2] = x[0], 2 if p.out_max_val else 1, p.top_k
        return [tuple(out)]

    def emit(self, node, inputs, em):
        p = node.param.argmax_param
        mx, nm = em.mx, em.name(node)
        x_shape = em.in_shapes(node)[0]
        axis, size = _argmax_plan(node, x_shape)
        x = inputs[0]
        if axis is None:
            x, axis, rank = mx.reshape(x, shape=(0, -1), name=em.sub("flat")), 1, 2
        else:
            rank = len(x_shape)
        index = em.const("index", np.arange(size, dtype=np.float32).reshape(
            tuple(size if a == axis else 1 for a in range(rank))))
        index = mx.broadcast_like(index, x, name=em.sub("index_full"))
        below = mx._internal._plus_scalar(index, scalar=-float(size), name=em.sub("index_below"))
        values, indices = [], []
        for t in range(p.top_k):
            top = mx.max(x, axis=axis, keepdims=True, name=em.sub(f"max{t}"))
            hit = mx.broadcast_equal(x, top, name=em.sub(f"hit{t}"))
            where = mx.max(mx.where(hit, index, below, name=em.sub(f"hit_index{t}")), axis=axis, keepdims=True,
                           name=em.sub(f"argmax{t}"))
            values.append(top)
            indices.append(where)
            if t < p.top_k - 1:
                if t == 0:
                    gone = mx._internal._plus_scalar(mx.zeros_like(x, name=em.sub("zeros")), scalar=-np.inf,
                                                     name=em.sub("removed"))
                taken = mx.broadcast_equal(index, where, name=em.sub(f"taken{t}"))
                x = mx.where(taken, gone, x, name=em.sub(f"rest{t}"))
        out_shape = em.out_shapes(node)[0]
        if p.HasField("axis"):
            chosen = values if p.out_max_val else indices
            if len(chosen) == 1:  # the keepdims result already has the top's shape: an identity, named
                return [em.identity(chosen[0], nm)]
            return [mx.concat(*chosen, dim=axis, name=nm)]
        parts = indices + (values if p.out_max_val else [])
        joined = parts[0] if len(parts) == 1 else mx.concat(*parts, dim=1, name=em.sub("joined"))
        return [mx.reshape(joined, shape=(0,) + tuple(out_shape[1:]), name=nm)]
