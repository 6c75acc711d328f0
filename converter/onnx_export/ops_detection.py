"""Ops the detection layers emit (SSD, Faster R-CNN, R-FCN): layout, comparisons, rounding,
gathers and sorts, ROI pooling, and the one op ONNX cannot express faithfully, box_nms.

`_contrib_box_nms` (DetectionOutput's per-class NMS, the proposal layer's NMS) is refused:
ONNX's NonMaxSuppression returns a data-dependent list of indices per class, computes IoU
without py-faster-rcnn's +1, and leaves keep_top_k, Caffe's row order and the fixed padded
layout to further data-dependent graph surgery; the exporter names the layer instead.
"""
import numpy as np

from .registry import Unsupported, attr_bool, attr_float, attr_int, attr_tuple, translates

_COMPARE = {"broadcast_greater_equal": "GreaterOrEqual", "broadcast_lesser": "Less"}
_SCALAR = {"_maximum_scalar": "Max", "_minimum_scalar": "Min", "_div_scalar": "Div"}


def _multi(b, op_type, inputs, n_out, suffix, **attrs):
    """An ONNX node with several outputs (the Builder's `add` makes one); returns their names."""
    node = b.current
    outs = [b.fresh(f"{node.name}/{suffix}_{i}") for i in range(n_out)]
    onnx_node = b.helper.make_node(op_type, list(inputs), outs, name=b._node_name(suffix),
                                   **{k: v for k, v in attrs.items() if v is not None})
    onnx_node.doc_string = f"Caffe layer '{node.layer}', MXNet node '{node.name}' ({node.op})"
    b.nodes.append(onnx_node)
    node.onnx_nodes.append(onnx_node.name)
    return outs


def _as_float(b, node, x):
    from onnx import TensorProto
    b.add("Cast", [x], node.output, to=TensorProto.FLOAT)


@translates("L2Normalization")
def l2_normalization(b, node):
    """x / sqrt(sum(x^2) + eps) over the channels (mode channel) or everything but the batch (instance)."""
    mode = node.attrs.get("mode", "instance")
    rank = len(node.in_shapes[0])
    if mode == "channel":
        axes = [1]
    elif mode == "instance":
        axes = list(range(1, rank))
    else:
        raise Unsupported(f"L2Normalization mode {mode}")
    x = node.inputs[0]
    sq = b.add("Mul", [x, x], suffix="square")
    total = b.add("ReduceSum", [sq, b.ints("axes", axes)], suffix="sum", keepdims=1)
    norm = b.add("Sqrt", [b.add("Add", [total, b.scalar("eps", np.float32(attr_float(node.attrs, "eps", 1e-10)))],
                                suffix="eps")], suffix="norm")
    b.add("Div", [x, norm], node.output)


@translates(*_COMPARE)
def compare(b, node):
    _as_float(b, node, b.add(_COMPARE[node.op], node.inputs[:2], suffix="test"))


@translates("_lesser_scalar")
def lesser_scalar(b, node):
    c = b.scalar("scalar", np.float32(attr_float(node.attrs, "scalar", 0.0)))
    _as_float(b, node, b.add("Less", [node.inputs[0], c], suffix="test"))


@translates(*_SCALAR)
def scalar_op(b, node):
    c = b.scalar("scalar", np.float32(attr_float(node.attrs, "scalar", 0.0)))
    b.add(_SCALAR[node.op], [node.inputs[0], c], node.output)


@translates("broadcast_minimum")
def broadcast_minimum(b, node):
    b.add("Min", node.inputs[:2], node.output)


@translates("broadcast_mod")
def broadcast_mod(b, node):
    """MXNet's mod takes the divisor's sign (Python's %): fmod, corrected where the signs differ."""
    x, y = node.inputs[:2]
    r = b.add("Mod", [x, y], suffix="fmod", fmod=1)
    zero = b.scalar("zero", np.float32(0))
    sign_differs = b.add("Xor", [b.add("Less", [r, zero], suffix="r_neg"), b.add("Less", [y, zero], suffix="y_neg")],
                         suffix="signs")
    fix = b.add("And", [sign_differs, b.add("Not", [b.add("Equal", [r, zero], suffix="r_zero")], suffix="r_nonzero")],
                suffix="fix")
    b.add("Where", [fix, b.add("Add", [r, y], suffix="shifted"), r], node.output)


@translates("round")
def round_(b, node):
    """Half away from zero (ONNX Round goes half to even): sign(x) * (floor|x| + (|x| - floor|x| >= 0.5))."""
    x = node.inputs[0]
    a = b.add("Abs", [x], suffix="abs")
    f = b.add("Floor", [a], suffix="floor")
    up = b.add("GreaterOrEqual", [b.add("Sub", [a, f], suffix="frac"), b.scalar("half", np.float32(0.5))],
               suffix="up")
    from onnx import TensorProto
    r = b.add("Add", [f, b.add("Cast", [up], suffix="up_f", to=TensorProto.FLOAT)], suffix="rounded")
    b.add("Mul", [b.add("Sign", [x], suffix="sign"), r], node.output)


@translates("floor", "ceil")
def floor_ceil(b, node):
    b.add("Floor" if node.op == "floor" else "Ceil", [node.inputs[0]], node.output)


@translates("broadcast_axis")
def broadcast_axis(b, node):
    axes, sizes = attr_tuple(node.attrs, "axis"), attr_tuple(node.attrs, "size")
    rank = len(node.in_shapes[0])
    target = [1] * rank
    for a, s in zip(axes, sizes):
        target[a % rank] = s
    b.add("Expand", [node.inputs[0], b.ints("shape", target)], node.output)


@translates("batch_dot")
def batch_dot(b, node):
    x, y = node.inputs[:2]
    if attr_bool(node.attrs, "transpose_a"):
        x = b.add("Transpose", [x], suffix="ta", perm=[0, 2, 1])
    if attr_bool(node.attrs, "transpose_b"):
        y = b.add("Transpose", [y], suffix="tb", perm=[0, 2, 1])
    b.add("MatMul", [x, y], node.output)


def _topk(b, node, k, largest):
    axis = attr_int(node.attrs, "axis", -1)
    return _multi(b, "TopK", [node.inputs[0], b.ints("k", [k])], 2, "topk", axis=axis, largest=int(largest),
                  sorted=1)


@translates("topk")
def topk(b, node):
    a = node.attrs
    ret = a.get("ret_typ", "indices")
    if ret not in ("indices", "value"):
        raise Unsupported(f"topk ret_typ {ret}")
    if a.get("dtype", "float32") not in ("float32", "None"):
        raise Unsupported(f"topk dtype {a.get('dtype')}")
    values, indices = _topk(b, node, attr_int(a, "k", 1), not attr_bool(a, "is_ascend"))
    if ret == "value":
        b.add("Identity", [values], node.output)
    else:
        _as_float(b, node, indices)


@translates("argsort")
def argsort(b, node):
    a = node.attrs
    if a.get("dtype", "float32") not in ("float32", "None"):
        raise Unsupported(f"argsort dtype {a.get('dtype')}")
    axis = attr_int(a, "axis", -1)
    _, indices = _topk(b, node, node.in_shapes[0][axis], not attr_bool(a, "is_ascend", True))
    _as_float(b, node, indices)


@translates("ROIPooling")
def roi_pooling(b, node):
    """ONNX MaxRoiPool: Caffe's ROI rounding, bin edges and empty bins, as MXNet's kernel."""
    pooled = attr_tuple(node.attrs, "pooled_size")
    b.add("MaxRoiPool", node.inputs[:2], node.output, pooled_shape=list(pooled),
          spatial_scale=attr_float(node.attrs, "spatial_scale", 1.0))


@translates("_contrib_box_nms")
def box_nms(b, node):
    raise Unsupported("its non-maximum suppression has no faithful ONNX form (NonMaxSuppression returns a "
                      "data-dependent index list per class, without Caffe's keep_top_k, row order or the fixed "
                      "padded layout, and without py-faster-rcnn's +1 in the IoU)")
