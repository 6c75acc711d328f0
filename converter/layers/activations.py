"""Element-wise activations and math layers, and Softmax."""
import math

import numpy as np

from .base import LayerHandler, canonical_axis, need_rank, register


class _Elementwise(LayerHandler):
    def emit(self, node, inputs, em):
        return [self.apply(node, inputs[0], em, em.name(node))]


@register
class ReLU(_Elementwise):
    types = ("ReLU",)
    notes = "negative_slope as leaky ReLU"
    mx_ops = ("Activation", "LeakyReLU")

    def apply(self, node, x, em, nm):
        slope = node.param.relu_param.negative_slope
        if slope == 0:
            return em.mx.Activation(x, act_type="relu", name=nm)
        return em.mx.LeakyReLU(x, act_type="leaky", slope=float(slope), name=nm)


@register
class PReLU(_Elementwise):
    types = ("PReLU",)
    notes = "per channel or channel_shared"
    mx_ops = ("LeakyReLU",)
    blob_names = ("slope",)

    def output_shapes(self, node, in_shapes):
        need_rank(in_shapes[0], 2, -1)  # Caffe: "Number of axes of bottom blob must be >=2"
        return [in_shapes[0]]

    def blob_shapes(self, node, in_shapes):
        return [()] if node.param.prelu_param.channel_shared else [(in_shapes[0][1],)]

    def init_blobs(self, node, shapes, rng):
        return [rng.uniform(0.05, 0.3, shapes[0]).astype(np.float32)]

    def sample_blobs(self, node, shapes, rng, options):
        return [rng.uniform(-0.5, 0.5, shapes[0]).astype(np.float32)]

    def apply(self, node, x, em, nm):
        slope = np.asarray(em.blobs(node)[0], np.float32).reshape(-1)
        return em.mx.LeakyReLU(x, gamma=em.param("gamma", slope), act_type="prelu", name=nm)


@register
class ELU(_Elementwise):
    types = ("ELU",)
    mx_ops = ("LeakyReLU",)

    def apply(self, node, x, em, nm):
        return em.mx.LeakyReLU(x, act_type="elu", slope=float(node.param.elu_param.alpha), name=nm)


@register
class Sigmoid(_Elementwise):
    types = ("Sigmoid",)
    mx_ops = ("Activation",)

    def apply(self, node, x, em, nm):
        return em.mx.Activation(x, act_type="sigmoid", name=nm)


@register
class TanH(_Elementwise):
    types = ("TanH",)
    mx_ops = ("Activation",)

    def apply(self, node, x, em, nm):
        return em.mx.Activation(x, act_type="tanh", name=nm)


@register
class AbsVal(_Elementwise):
    types = ("AbsVal",)
    mx_ops = ("abs",)

    def apply(self, node, x, em, nm):
        return em.mx.abs(x, name=nm)


@register
class BNLL(_Elementwise):
    """Binomial normal log-likelihood, log(1 + e^x): MXNet's softrelu, which is exact for large x."""

    types = ("BNLL",)
    mx_ops = ("Activation",)

    def apply(self, node, x, em, nm):
        return em.mx.Activation(x, act_type="softrelu", name=nm)


@register
class ReLU6(_Elementwise):
    """min(max(x, 0), 6), the forks' layer for MobileNet-style nets."""

    types = ("ReLU6",)
    mx_ops = ("clip",)

    def check(self, node):
        slope = node.param.relu_param.negative_slope
        return [] if slope == 0 else [f"relu_param.negative_slope {slope}: ReLU6 has no leaky form"]

    def apply(self, node, x, em, nm):
        return em.mx.clip(x, a_min=0.0, a_max=6.0, name=nm)


@register
class Threshold(_Elementwise):
    """1 where x > threshold, else 0 (as float)."""

    types = ("Threshold",)
    mx_ops = ("_greater_scalar",)

    def apply(self, node, x, em, nm):
        return em.mx._internal._greater_scalar(x, scalar=float(node.param.threshold_param.threshold), name=nm)


def _affine(x, scale, shift, em):
    if scale != 1:
        x = em.mx._internal._mul_scalar(x, scalar=float(scale), name=em.sub("scale"))
    if shift != 0:
        x = em.mx._internal._plus_scalar(x, scalar=float(shift), name=em.sub("shift"))
    return x


@register
class Power(_Elementwise):
    """(shift + scale * x) ^ power."""

    types = ("Power",)
    mx_ops = ("_plus_scalar", "zeros_like", "_mul_scalar", "_copy", "_power_scalar")

    def identity(self, node, in_shapes):
        p = node.param.power_param
        return p.scale == 1 and p.shift == 0 and p.power == 1

    def apply(self, node, x, em, nm):
        p = node.param.power_param
        if p.scale == 0 or p.power == 0:
            value = 1.0 if p.power == 0 else float(p.shift) ** float(p.power)
            return em.mx._internal._plus_scalar(em.mx.zeros_like(x, name=em.sub("zeros")), scalar=value, name=nm)
        y = _affine(x, p.scale, p.shift, em)
        if p.power == 1:
            return em.identity(y, nm)
        return em.mx._internal._power_scalar(y, scalar=float(p.power), name=nm)


@register
class Exp(_Elementwise):
    """base ^ (shift + scale * x); base -1 means e."""

    types = ("Exp",)
    mx_ops = ("_mul_scalar", "_plus_scalar", "exp")

    def check(self, node):
        b = node.param.exp_param.base
        return [] if b == -1 or b > 0 else [f"exp_param.base {b} must be -1 (e) or positive"]

    def apply(self, node, x, em, nm):
        p = node.param.exp_param
        log_base = 1.0 if p.base == -1 else math.log(p.base)
        y = _affine(x, log_base * p.scale, log_base * p.shift, em)
        return em.mx.exp(y, name=nm)


@register
class Log(_Elementwise):
    """log_base(shift + scale * x); base -1 means e."""

    types = ("Log",)
    mx_ops = ("_mul_scalar", "_plus_scalar", "log")

    def check(self, node):
        b = node.param.log_param.base
        return [] if b == -1 or (b > 0 and b != 1) else [f"log_param.base {b} must be -1 (e) or positive, not 1"]

    def apply(self, node, x, em, nm):
        p = node.param.log_param
        y = em.mx.log(_affine(x, p.scale, p.shift, em), name=nm if p.base == -1 else em.sub("ln"))
        if p.base == -1:
            return y
        return em.mx._internal._mul_scalar(y, scalar=1.0 / math.log(p.base), name=nm)


@register
class Clip(_Elementwise):
    types = ("Clip",)
    mx_ops = ("clip",)

    def check(self, node):
        p = node.param.clip_param
        missing = [f for f in ("min", "max") if not p.HasField(f)]
        return [f"clip_param.{f} is required" for f in missing]

    def apply(self, node, x, em, nm):
        p = node.param.clip_param
        return em.mx.clip(x, a_min=float(p.min), a_max=float(p.max), name=nm)


@register
class Swish(_Elementwise):
    """x * sigmoid(beta * x)."""

    types = ("Swish",)
    mx_ops = ("_mul_scalar", "Activation", "elemwise_mul")

    def apply(self, node, x, em, nm):
        beta = float(node.param.swish_param.beta)
        z = x if beta == 1 else em.mx._internal._mul_scalar(x, scalar=beta, name=em.sub("beta"))
        return em.mx.elemwise_mul(x, em.mx.Activation(z, act_type="sigmoid", name=em.sub("sigmoid")), name=nm)


@register
class Softmax(LayerHandler):
    types = ("Softmax",)
    mx_ops = ("softmax",)

    def output_shapes(self, node, in_shapes):
        _softmax_axis(node, in_shapes[0])
        return [in_shapes[0]]

    def emit(self, node, inputs, em):
        axis = _softmax_axis(node, em.in_shapes(node)[0])
        return [em.mx.softmax(inputs[0], axis=axis, name=em.name(node))]

    def reduction_length(self, node, in_shapes, out_shapes):
        return int(in_shapes[0][_softmax_axis(node, in_shapes[0])])


def _softmax_axis(node, shape):
    axis = canonical_axis(node.param.softmax_param.axis, len(shape))
    if not 0 <= axis < len(shape):
        raise ValueError(f"axis {node.param.softmax_param.axis} is out of range for a {len(shape)}-D input")
    return axis
