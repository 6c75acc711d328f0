"""Activations, element-wise arithmetic, scalar ops, reductions and softmax."""
import numpy as np

from .registry import Unsupported, attr_bool, attr_float, attr_int, attr_tuple, translates

# Only ops some layer handler emits (their `mx_ops`) are translated: a test ties the two.
_UNARY = {"abs": "Abs", "exp": "Exp", "log": "Log", "sqrt": "Sqrt"}
_BINARY = {"elemwise_mul": "Mul", "broadcast_add": "Add", "broadcast_sub": "Sub", "broadcast_mul": "Mul",
           "broadcast_div": "Div", "broadcast_maximum": "Max"}
#: MXNet scalar op -> (ONNX op, scalar comes first)
_SCALAR = {"_plus_scalar": ("Add", False), "_mul_scalar": ("Mul", False), "_power_scalar": ("Pow", False)}
_ACTIVATION = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softrelu": "Softplus", "softsign": "Softsign"}


@translates(*_UNARY)
def unary(b, node):
    b.add(_UNARY[node.op], [node.inputs[0]], node.output)


@translates("square")
def square(b, node):
    b.add("Mul", [node.inputs[0], node.inputs[0]], node.output)


@translates(*_BINARY)
def binary(b, node):
    b.add(_BINARY[node.op], node.inputs[:2], node.output)


@translates("add_n")
def add_n(b, node):
    if len(node.inputs) == 1:
        b.add("Identity", node.inputs, node.output)
    else:
        b.add("Sum", node.inputs, node.output)


@translates(*_SCALAR)
def scalar_op(b, node):
    op, first = _SCALAR[node.op]
    c = b.scalar("scalar", np.float32(attr_float(node.attrs, "scalar", 1.0)))
    b.add(op, [c, node.inputs[0]] if first else [node.inputs[0], c], node.output)


@translates("Activation")
def activation(b, node):
    act = node.attrs.get("act_type")
    if act not in _ACTIVATION:
        raise Unsupported(f"act_type {act}")
    b.add(_ACTIVATION[act], [node.inputs[0]], node.output)


@translates("LeakyReLU")
def leaky_relu(b, node):
    a = node.attrs
    act = a.get("act_type", "leaky")
    slope = attr_float(a, "slope", 0.25)
    if act == "leaky":
        b.add("LeakyRelu", [node.inputs[0]], node.output, alpha=slope)
    elif act == "elu":
        b.add("Elu", [node.inputs[0]], node.output, alpha=slope)
    elif act == "prelu":
        gamma = b.param_array(node.inputs[1]).reshape(-1)
        rank = len(node.in_shapes[0])
        if gamma.size > 1 and rank > 2:
            gamma = gamma.reshape((-1,) + (1,) * (rank - 2))
        b.add("PRelu", [node.inputs[0], b.initializer(node.inputs[1], gamma)], node.output)
    elif act == "selu":
        b.add("Selu", [node.inputs[0]], node.output)
    else:
        raise Unsupported(f"LeakyReLU act_type {act}")


@translates("clip")
def clip(b, node):
    lo = b.scalar("min", np.float32(attr_float(node.attrs, "a_min")))
    hi = b.scalar("max", np.float32(attr_float(node.attrs, "a_max")))
    b.add("Clip", [node.inputs[0], lo, hi], node.output)


@translates("softmax")
def softmax(b, node):
    a = node.attrs
    if attr_float(a, "temperature", 1.0) not in (1.0,) or attr_bool(a, "use_length"):
        raise Unsupported("softmax with temperature or use_length")
    b.add("Softmax", [node.inputs[0]], node.output, axis=attr_int(a, "axis", -1))


def _reduce_axes(node):
    axes = attr_tuple(node.attrs, "axis")
    rank = len(node.in_shapes[0])
    if axes is None:
        axes = tuple(range(rank))
    axes = [a + rank if a < 0 else a for a in axes]
    if attr_bool(node.attrs, "exclude"):
        axes = [a for a in range(rank) if a not in axes]
    return axes


@translates("mean")
def reduce_mean(b, node):
    keep = int(attr_bool(node.attrs, "keepdims"))
    axes = _reduce_axes(node)
    if b.opset >= 18:
        b.add("ReduceMean", [node.inputs[0], b.ints("axes", axes)], node.output, keepdims=keep)
    else:
        b.add("ReduceMean", [node.inputs[0]], node.output, axes=axes, keepdims=keep)


@translates("zeros_like")
def zeros_like(b, node):
    from onnx import helper, TensorProto
    shape = b.add("Shape", [node.inputs[0]], suffix="shape")
    value = helper.make_tensor("value", TensorProto.FLOAT, [1], [0.0])
    b.add("ConstantOfShape", [shape], node.output, value=value)
