"""Reduction and ArgMax, from Caffe's definitions."""
import numpy as np

from .call import canonical_axis
from .registry import register


@register("Reduction")
def reduction(call):
    """Every axis from `axis` on is reduced (axis 0: a 0-d blob), then scaled by `coeff`.
    MEAN divides by the number of reduced elements."""
    call.expect_bottoms(1)
    x, p = call.bottoms[0], call.param.reduction_param
    axis = canonical_axis(call, p.axis, x.ndim)
    rows = x.reshape(x.shape[:axis] + (-1,))
    op = p.ReductionOp.Name(p.operation)
    if op == "SUM":
        y = rows.sum(axis=-1)
    elif op == "ASUM":
        y = np.abs(rows).sum(axis=-1)
    elif op == "SUMSQ":
        y = (rows * rows).sum(axis=-1)
    else:
        y = rows.sum(axis=-1) / rows.shape[-1]
    return [np.asarray(y * call.dtype(p.coeff), dtype=call.dtype)]


def _top_k_order(rows, k):
    """Per row, the indices of its k largest (value, index) pairs in descending pair order:
    equal values put the larger index first, as Caffe's std::greater on pairs does."""
    index = np.broadcast_to(np.arange(rows.shape[-1]), rows.shape)
    ascending = np.lexsort((index, rows), axis=-1)  # by value, then by index
    return ascending[:, ::-1][:, :k]


@register("ArgMax")
def argmax(call):
    """Without axis: per item over the flattened rest, top N x (1 or 2) x top_k (x 1...), with
    out_max_val channel 0 the indices and channel 1 the values. With axis: that axis becomes
    top_k long and holds the indices, or the values only with out_max_val."""
    call.expect_bottoms(1)
    x, p = call.bottoms[0], call.param.argmax_param
    k = p.top_k
    if k < 1:
        raise call.error(f"top_k {k} must be at least 1")
    if p.HasField("axis"):
        axis = canonical_axis(call, p.axis, x.ndim)
        moved = np.moveaxis(x, axis, -1)
        rows = moved.reshape(-1, x.shape[axis])
    else:
        rows = x.reshape(x.shape[0], -1)
    if k > rows.shape[1]:
        raise call.error(f"top_k {k} exceeds the {rows.shape[1]} values it chooses from")
    order = _top_k_order(rows, k)
    values = np.take_along_axis(rows, order, axis=-1)
    indices = order.astype(call.dtype)
    if p.HasField("axis"):
        chosen = values if p.out_max_val else indices
        return [np.moveaxis(chosen.reshape(moved.shape[:-1] + (k,)), -1, axis)]
    out = [1] * max(x.ndim, 3)
    out[0], out[1], out[2] = x.shape[0], 2 if p.out_max_val else 1, k
    parts = [indices, values] if p.out_max_val else [indices]
    return [np.stack(parts, axis=1).reshape(out)]
