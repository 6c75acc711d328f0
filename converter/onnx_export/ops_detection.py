"""Ops the detection layers emit (SSD, Faster R-CNN, R-FCN): layout, comparisons, rounding,
gathers and sorts, ROI pooling, and `_contrib_box_nms` (DetectionOutput's per-class NMS, the
proposal layer's pre-NMS top-N and NMS).

box_nms is MXNet 1.9.1's CPU kernel (contrib/bounding_box-inl.h), rebuilt around ONNX's
NonMaxSuppression (ORT's cpu/object_detection) where the two rules differ:

* valid rows: score > valid_thresh (NaN never), and id != background_id when id_index >= 0;
  the thresholds are read by MXNet's own parser (dmlc::stof is not correctly rounded:
  '-1e+38' is -1.0000001e38, -FLT_MAX is -inf);
* order: a stable descending sort (ties: lower row first); topk keeps the first topk valid
  rows of each batch item. ORT's NMS pops equal scores in heap order, so it gets no scores,
  only ranks: N - rank (exact below 2^24), 0 for rows out of the race, score_threshold 0.5;
  the rank and the output order come from TopK, whose ties go to the lower index;
* greedy suppression by iou > overlap_thresh (both strict), same id only (ids cast to int as
  the kernel does) unless force_suppress: one NMS class per distinct id (Unique);
* IoU, corner format, no +1: both compute inter / (area_ref + area_pos - inter) in float32.
  ORT orders each box's corners, MXNet does not: a box with x2 <= x1 or y2 <= y1 has area 0
  and meets nothing in MXNet, so it goes to NMS as [0, 0, 0, 0] (ORT skips zero areas);
  overlap_thresh > 1 (nothing suppressed) is 1, < 0 (disjoint boxes suppressed) is refused;
* output: the kept rows (all columns) in rank order, then rows of -1.
NaN coordinates are not covered; center in/out formats are refused.
"""
import numpy as np

from ..mxnet_import import import_mxnet
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


def _mxnet_float(raw, what):
    """A float attribute as MXNet 1.9.1 reads it (dmlc::stof, as for every float parameter):
    clip's float bounds go through the same parser, and clip returns them."""
    mx = import_mxnet()
    try:
        got = mx.nd.clip(mx.nd.array([np.inf, -np.inf]), a_min=raw, a_max=raw).asnumpy()
    except Exception as exc:  # noqa: BLE001 - MXNet's own message says why
        raise Unsupported(f"box_nms {what} '{raw}' is not a float MXNet reads ({str(exc).splitlines()[0]})") from None
    return np.float32(np.nan) if got[0] != got[1] else got[0]  # only NaN bounds leave both values alone


_BOX_NMS_ATTRS = {"overlap_thresh", "valid_thresh", "topk", "coord_start", "score_index", "id_index",
                  "background_id", "force_suppress", "in_format", "out_format"}


@translates("_contrib_box_nms")
def box_nms(b, node):
    """MXNet's CPU box_nms (see the module docstring for where ONNX's NMS differs and why)."""
    from onnx import TensorProto
    a = node.attrs
    unknown = sorted(set(a) - _BOX_NMS_ATTRS)
    if unknown:
        raise Unsupported(f"box_nms attribute(s) {unknown} are not translated")
    for key in ("in_format", "out_format"):
        if a.get(key, "corner") != "corner":
            raise Unsupported(f"box_nms {key}={a[key]}: only corner boxes are translated")
    shape = node.in_shapes[0]
    n, width = int(shape[-2]), int(shape[-1])
    topk = attr_int(a, "topk", -1)
    x = node.inputs[0]
    if topk == 0 or n == 0:  # MXNet copies the input when topk < 1 (after topk = min(N, topk))
        b.add("Identity", [x], node.output)
        return
    if n >= 1 << 24:
        raise Unsupported(f"box_nms over {n} boxes: ranks are float32 scores, exact only below 2^24 boxes")
    overlap = _mxnet_float(a.get("overlap_thresh", "0.5"), "overlap_thresh")
    valid_thresh = _mxnet_float(a.get("valid_thresh", "0"), "valid_thresh")
    if overlap < 0:
        raise Unsupported(f"box_nms overlap_thresh {overlap} < 0 suppresses disjoint boxes (IoU 0); ONNX's "
                          f"NonMaxSuppression takes a threshold in [0, 1]")
    overlap = np.float32(1.0) if not overlap <= 1 else overlap  # above 1 or NaN: no IoU passes it
    score_index = attr_int(a, "score_index", 1)
    coord_start = attr_int(a, "coord_start", 2)
    id_index = attr_int(a, "id_index", -1)
    force = attr_bool(a, "force_suppress", False)
    background = attr_int(a, "background_id", -1)
    f32 = b.scalar

    x3 = b.add("Reshape", [x, b.ints("rows", [-1, n, width])], suffix="batched")

    def column(i, what):
        c = b.add("Slice", [x3, b.ints(f"{what}_start", [i]), b.ints(f"{what}_end", [i + 1]), b.ints("axis2", [2])],
                  suffix=f"{what}_col")
        return b.add("Squeeze", [c, b.ints("axis2", [2])], suffix=what)

    # valid rows, and their rank in the stable descending sort (invalid rows sort last)
    score = column(score_index, "score")
    valid = b.add("Greater", [score, f32("valid_thresh", valid_thresh)], suffix="valid")
    if id_index >= 0:
        ids = column(id_index, "id")
        background_row = b.add("Equal", [ids, f32("background_id", np.float32(background))], suffix="is_background")
        valid = b.add("And", [valid, b.add("Not", [background_row], suffix="not_background")], suffix="valid_fg")
    key = b.add("Where", [valid, score, f32("minus_inf", -np.inf)], suffix="sort_key")
    _, order = _multi(b, "TopK", [key, b.ints("n", [n])], 2, "order", axis=1, largest=1, sorted=1)
    positions = b.add("Expand", [b.ints("positions", np.arange(n).reshape(1, n)), b.add("Shape", [order],
                                                                                       suffix="batch_n")],
                      suffix="positions_b")
    rank = b.add("ScatterElements", [order, order, positions], suffix="rank", axis=1)  # a permutation: all written
    racing = valid
    if 0 < topk < n:
        racing = b.add("And", [valid, b.add("Less", [rank, b.ints("topk", [topk])], suffix="in_topk")],
                       suffix="racing")
    # distinct scores for NMS: N - rank for rows in the race, 0 (under score_threshold 0.5) for the rest
    strength = b.add("Cast", [b.add("Sub", [b.ints("count", [n]), rank], suffix="n_minus_rank")], suffix="strength",
                     to=TensorProto.FLOAT)
    strength = b.add("Where", [racing, strength, f32("zero", np.float32(0))], suffix="nms_score")
    per_class = b.add("Unsqueeze", [strength, b.ints("axis1", [1])], suffix="one_class")
    if id_index >= 0 and not force:
        as_int = b.add("Cast", [b.add("Cast", [ids], suffix="id_int32", to=TensorProto.INT32)], suffix="id_int",
                       to=TensorProto.INT64)
        flat = b.add("Reshape", [as_int, b.ints("flat", [-1])], suffix="ids_flat")
        unique = _multi(b, "Unique", [flat], 4, "classes", sorted=1)
        klass = b.add("Reshape", [unique[2], b.add("Shape", [strength], suffix="score_shape")], suffix="class")
        depth = b.add("Shape", [unique[0]], suffix="depth")
        classes = b.add("Range", [b.const("class0", np.array(0, np.int64), np.int64),
                                  b.add("Squeeze", [depth, b.ints("axis0", [0])], suffix="depth_s"),
                                  b.const("class_step", np.array(1, np.int64), np.int64)], suffix="class_range")
        member = b.add("Equal", [b.add("Unsqueeze", [klass, b.ints("axis1", [1])], suffix="class_b1n"),
                                 b.add("Unsqueeze", [classes, b.ints("axes02", [0, 2])], suffix="class_1d1")],
                       suffix="member")
        per_class = b.add("Where", [member, per_class, f32("zero", np.float32(0))], suffix="class_scores")
    # boxes: a degenerate one (x2 <= x1 or y2 <= y1) meets nothing in MXNet; zeroed, it meets nothing in ORT
    boxes = b.add("Slice", [x3, b.ints("box_start", [coord_start]), b.ints("box_end", [coord_start + 4]),
                            b.ints("axis2", [2])], suffix="boxes")
    x1, y1, x2, y2 = (column(coord_start + i, f"c{i}") for i in range(4))
    flat_box = b.add("Or", [b.add("LessOrEqual", [x2, x1], suffix="no_width"),
                            b.add("LessOrEqual", [y2, y1], suffix="no_height")], suffix="degenerate")
    boxes = b.add("Where", [b.add("Unsqueeze", [flat_box, b.ints("axis2", [2])], suffix="degenerate_b"),
                            f32("zero", np.float32(0)), boxes], suffix="nms_boxes")
    selected = b.add("NonMaxSuppression", [boxes, per_class, b.ints("max_out", [n]),
                                           f32("iou", np.float32(overlap).reshape(1)),
                                           f32("score_threshold", np.float32([0.5]))],
                     suffix="nms", center_point_box=0)
    # kept rows: strength where kept, 0 elsewhere; TopK puts them first in rank order
    where = b.add("Gather", [selected, b.ints("batch_box", [0, 2])], suffix="kept_at", axis=1)
    ones = b.add("ConstantOfShape", [b.add("Slice", [b.add("Shape", [selected], suffix="n_kept_shape"),
                                                     b.ints("zero_i", [0]), b.ints("one_i", [1])], suffix="n_kept")],
                 suffix="ones", value=b.helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0]))
    kept = b.add("ScatterND", [b.add("Mul", [strength, f32("zero", np.float32(0))], suffix="zeros"), where, ones],
                 suffix="kept")
    top, pick = _multi(b, "TopK", [b.add("Mul", [kept, strength], suffix="kept_strength"), b.ints("n", [n])], 2,
                       "out_order", axis=1, largest=1, sorted=1)
    rows = b.add("GatherElements", [x3, b.add("Expand", [b.add("Unsqueeze", [pick, b.ints("axis2", [2])],
                                                               suffix="pick_b"),
                                                         b.add("Shape", [x3], suffix="rows_shape")],
                                              suffix="pick_rows")], suffix="rows", axis=1)
    filled = b.add("Where", [b.add("Unsqueeze", [b.add("Greater", [top, f32("zero", np.float32(0))], suffix="is_kept"),
                                                 b.ints("axis2", [2])], suffix="is_kept_b"),
                             rows, f32("minus_one", np.float32(-1))], suffix="filled")
    b.add("Reshape", [filled, b.add("Shape", [x], suffix="in_shape")], node.output)
