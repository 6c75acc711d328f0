"""Scale and Bias: broadcast affine maps with Caffe's axis rules."""
import numpy as np

from .call import broadcast_shape, canonical_axis
from .registry import register


def _operand_axes(call, x, p, with_second_bottom):
    """(axis, shape) of the operand: the second bottom's shape, or num_axes dims of x from axis.

    Caffe's axis for a second bottom may index x; num_axes -1 means "to the end", 0 a scalar.
    """
    axis = canonical_axis(call, p.axis, x.ndim) if x.ndim else 0
    if with_second_bottom:
        shape = call.bottoms[1].shape
        if tuple(x.shape[axis:axis + len(shape)]) != tuple(shape):
            raise call.error(f"second bottom shape {list(shape)} does not match bottom dims "
                             f"{list(x.shape[axis:axis + len(shape)])} from axis {axis}")
        return axis, tuple(shape)
    if p.num_axes < -1:
        raise call.error(f"num_axes must be >= -1, got {p.num_axes}")
    end = x.ndim if p.num_axes == -1 else axis + p.num_axes
    if end > x.ndim:
        raise call.error(f"axis {axis} + num_axes {p.num_axes} exceeds the bottom's {x.ndim} dims")
    return axis, tuple(x.shape[axis:end])


@register("Scale")
def scale(call):
    """y = x * gamma (+ beta): gamma is blob 0 or the second bottom; beta the next blob."""
    call.expect_bottoms(1, 2)
    x, p = call.bottoms[0], call.param.scale_param
    two = len(call.bottoms) == 2
    axis, shape = _operand_axes(call, x, p, two)
    call.expect_blobs((0 if two else 1) + int(p.bias_term))
    gamma = call.bottoms[1] if two else call.blob(0, shape)
    y = x * gamma.reshape(broadcast_shape(x.ndim, axis, shape))
    if p.bias_term:
        beta = call.blob(len(call.blobs) - 1, shape)
        y = y + beta.reshape(broadcast_shape(x.ndim, axis, shape))
    return [y]


@register("Bias")
def bias(call):
    call.expect_bottoms(1, 2)
    x, p = call.bottoms[0], call.param.bias_param
    two = len(call.bottoms) == 2
    axis, shape = _operand_axes(call, x, p, two)
    call.expect_blobs(0 if two else 1)
    b = call.bottoms[1] if two else call.blob(0, shape)
    return [x + b.reshape(broadcast_shape(x.ndim, axis, shape))]
