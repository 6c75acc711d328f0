"""Element-wise layers and Softmax. Parameters are float32 in caffe.proto; they are used as read."""
import numpy as np

from .call import canonical_axis
from .registry import register


def _one(call):
    call.expect_bottoms(1)
    return call.bottoms[0]


def _sigmoid(x):
    return 0.5 * np.tanh(0.5 * x) + 0.5  # no overflow warning for large |x|


@register("ReLU")
def relu(call):
    x = _one(call)
    slope = call.param.relu_param.negative_slope
    y = np.maximum(x, 0)
    return [y + slope * np.minimum(x, 0) if slope else y]


@register("PReLU")
def prelu(call):
    x = _one(call)
    call.expect_blobs(1)
    if call.param.prelu_param.channel_shared:
        a = call.blob(0, (1,))[0]
    else:
        if x.ndim < 2:
            raise call.error(f"per-channel PReLU needs a channel axis, got shape {list(x.shape)}")
        a = call.blob(0, (x.shape[1],)).reshape((1, -1) + (1,) * (x.ndim - 2))
    return [np.maximum(x, 0) + a * np.minimum(x, 0)]


@register("ELU")
def elu(call):
    x = _one(call)
    alpha = call.param.elu_param.alpha
    return [np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))]


@register("Sigmoid")
def sigmoid(call):
    return [_sigmoid(_one(call))]


@register("TanH")
def tanh(call):
    return [np.tanh(_one(call))]


@register("AbsVal")
def absval(call):
    return [np.abs(_one(call))]


@register("BNLL")
def bnll(call):
    """Caffe's two branches of log(1 + e^x): x + log(1 + e^-x) above 0, log(1 + e^x) otherwise."""
    x = _one(call)
    neg_abs = -np.abs(x)  # e^-|x| never overflows; each branch uses it where it applies
    return [np.where(x > 0, x + np.log1p(np.exp(neg_abs)), np.log1p(np.exp(neg_abs)))]


@register("ReLU6")
def relu6(call):
    x = _one(call)
    if call.param.relu_param.negative_slope:
        raise call.error("ReLU6 has no negative_slope")
    return [np.minimum(np.maximum(x, 0), 6)]


@register("Threshold")
def threshold(call):
    """Caffe compares in the bottom's float type against the float32 parameter."""
    x = _one(call)
    return [(x > call.dtype(call.param.threshold_param.threshold)).astype(call.dtype)]


@register("Power")
def power(call):
    x, p = _one(call), call.param.power_param
    with np.errstate(invalid="ignore", divide="ignore"):
        return [np.power(p.shift + p.scale * x, p.power)]


@register("Exp")
def exp(call):
    """y = base^(shift + scale x); base -1 means e."""
    x, p = _one(call), call.param.exp_param
    if p.base != -1 and p.base <= 0:
        raise call.error(f"base must be -1 (e) or positive, got {p.base}")
    ln_base = 1.0 if p.base == -1 else np.log(call.dtype(p.base))
    return [np.exp(ln_base * (p.shift + p.scale * x))]


@register("Log")
def log(call):
    """y = log_base(shift + scale x); base -1 means e."""
    x, p = _one(call), call.param.log_param
    if p.base != -1 and p.base <= 0:
        raise call.error(f"base must be -1 (e) or positive, got {p.base}")
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.log(p.shift + p.scale * x)
    return [y if p.base == -1 else y / np.log(call.dtype(p.base))]


@register("Clip")
def clip(call):
    x, p = _one(call), call.param.clip_param
    if not (p.HasField("min") and p.HasField("max")):
        raise call.error("clip_param needs both min and max")
    return [np.minimum(np.maximum(x, p.min), p.max)]


@register("Swish")
def swish(call):
    x = _one(call)
    return [x * _sigmoid(call.param.swish_param.beta * x)]


@register("Softmax")
def softmax(call):
    x = _one(call)
    axis = canonical_axis(call, call.param.softmax_param.axis, x.ndim)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return [e / e.sum(axis=axis, keepdims=True)]
