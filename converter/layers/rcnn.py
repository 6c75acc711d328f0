"""Faster R-CNN and R-FCN layers: ROIPooling, PSROIPooling, and py-faster-rcnn's proposal layer.

* ROIPooling is MXNet's own operator, whose CPU kernel is Caffe's (rounding, bin edges,
  empty bins 0).
* PSROIPooling is composed: MXNet's `_contrib_PSROIPooling` has no CPU kernel (it returns
  without writing). Each bin's average is a masked sum: 0/1 row and column masks from the
  bin edges (computed in float32 as R-FCN's kernel does), one batched matrix product over
  the rows and a masked sum over the columns.
* The `Python` layer is converted only for py-faster-rcnn's `rpn.proposal_layer.ProposalLayer`,
  recognised by its names; no module is imported. MXNet's `_contrib_Proposal` differs from it
  (its x2/y2 are one pixel short: ctr + 0.5*(w - 1); it keeps too-small boxes with score -1;
  it drops cells past im_info/stride), so the layer is composed: anchors (a constant), bbox
  transform, clipping to im_info, the min-size filter, then `_contrib_box_nms` for the sort,
  pre-NMS top-N and greedy NMS (boxes given x2+1/y2+1 so its IoU is py-faster-rcnn's).
  Caffe's row count is data-dependent; the converted layer always has R = min(post-NMS N,
  pre-NMS N, anchors) rows: the kept proposals, then the same proposals repeated in order
  (as MXNet's own Proposal pads), so layers that read the rois stay valid. If no box passes
  the min-size filter, every row is [0, -1, -1, -1, -1] (score -1).
"""
import numpy as np

from .base import LayerHandler, register

FLT_MAX = float(np.finfo(np.float32).max)
VALID = -1e38  # box_nms keeps scores above this: every real score, not the filtered ones' -FLT_MAX

#: py-faster-rcnn's ProposalLayer, as the `Python` layer names it
PROPOSAL_MODULES = {("rpn.proposal_layer", "ProposalLayer")}
#: lib/fast_rcnn/config.py TEST defaults (the deploy phase)
PROPOSAL_TEST = {"pre_nms_top_n": 6000, "post_nms_top_n": 300, "nms_thresh": 0.7, "min_size": 16}
ROIS_LAYOUT = {"rows_axis": 0, "width": 5, "image": 0, "label": None, "score": None, "box": (1, 5), "pad": "cycle"}
SCORES_LAYOUT = {"rows_axis": 0, "width": 1, "image": None, "label": None, "score": 0, "box": None, "pad": "cycle"}


# -- ROIPooling -----------------------------------------------------------------------------------

def _rois_count(shape):
    if int(np.prod(shape[1:])) != 5:
        raise ValueError(f"the rois bottom must hold 5 values per ROI (batch, x1, y1, x2, y2), got {list(shape)}")
    return int(shape[0])


@register
class ROIPooling(LayerHandler):
    types = ("ROIPooling",)
    n_bottoms = (2, 2)
    mx_ops = ("ROIPooling", "Reshape")
    notes = "MXNet's ROIPooling (Caffe's kernel)"

    def check(self, node):
        p = node.param.roi_pooling_param
        return [] if p.pooled_h > 0 and p.pooled_w > 0 else ["roi_pooling_param.pooled_h and pooled_w must be > 0"]

    def output_shapes(self, node, in_shapes):
        x, rois = in_shapes
        if len(x) != 4:
            raise ValueError(f"expects a 4-D feature map, got {list(x)}")
        p = node.param.roi_pooling_param
        return [(_rois_count(rois), x[1], p.pooled_h, p.pooled_w)]

    def emit(self, node, inputs, em):
        p = node.param.roi_pooling_param
        x, rois = inputs
        shape = em.in_shapes(node)[1]
        if len(shape) != 2:
            rois = em.mx.reshape(rois, shape=(shape[0], 5), name=em.sub("rois"))
        return [em.mx.ROIPooling(x, rois, pooled_size=(p.pooled_h, p.pooled_w), spatial_scale=float(p.spatial_scale),
                                 name=em.name(node))]


# -- PSROIPooling ---------------------------------------------------------------------------------

@register
class PSROIPooling(LayerHandler):
    """R-FCN's position-sensitive average pooling (pooled size = group_size)."""

    types = ("PSROIPooling",)
    n_bottoms = (2, 2)
    mx_ops = ("Reshape", "slice_axis", "round", "_mul_scalar", "_plus_scalar", "broadcast_sub", "_maximum_scalar",
              "_minimum_scalar", "_div_scalar", "broadcast_mul", "broadcast_add", "floor", "ceil",
              "broadcast_greater_equal", "broadcast_lesser", "transpose", "expand_dims", "broadcast_axis",
              "batch_dot", "sum", "broadcast_div", "broadcast_equal", "add_n", "BlockGrad")
    notes = "composed (MXNet has no CPU PSROIPooling); bin edges in float32 without fused multiply-add"

    def check(self, node):
        p = node.param.psroi_pooling_param
        problems = []
        if not p.HasField("spatial_scale"):
            problems.append("psroi_pooling_param.spatial_scale is required")
        if p.output_dim <= 0 or p.group_size <= 0:
            problems.append("psroi_pooling_param.output_dim and group_size must be > 0")
        return problems

    def output_shapes(self, node, in_shapes):
        x, rois = in_shapes
        p = node.param.psroi_pooling_param
        if len(x) != 4:
            raise ValueError(f"expects a 4-D feature map, got {list(x)}")
        if x[1] != p.output_dim * p.group_size ** 2:
            raise ValueError(f"{x[1]} input channels, output_dim * group_size^2 = "
                             f"{p.output_dim * p.group_size ** 2}")
        return [(_rois_count(rois), p.output_dim, p.group_size, p.group_size)]

    def emit(self, node, inputs, em):
        mx = em.mx
        p = node.param.psroi_pooling_param
        x, rois = inputs
        (n, c, height, width), rshape = em.in_shapes(node)
        g, od, r = int(p.group_size), int(p.output_dim), int(rshape[0])
        rois = mx.reshape(rois, shape=(r, 5), name=em.sub("rois"))
        col = [mx.slice_axis(rois, axis=1, begin=i, end=i + 1, name=em.sub(f"roi_{i}")) for i in range(5)]
        scale = float(p.spatial_scale)
        bins = em.const("bins", np.arange(g, dtype=np.float32).reshape(1, g))
        bins1 = em.const("bins_end", np.arange(1, g + 1, dtype=np.float32).reshape(1, g))

        def edges(lo, hi, size, what):
            """[start, end) of each bin along one axis, (r, g, 1) each, clipped to [0, size]."""
            start = mx._internal._mul_scalar(mx.round(lo, name=em.sub(f"{what}_r0")), scalar=scale,
                                             name=em.sub(f"{what}_start"))
            end = mx._internal._mul_scalar(
                mx._internal._plus_scalar(mx.round(hi, name=em.sub(f"{what}_r1")), scalar=1.0,
                                          name=em.sub(f"{what}_r1p")), scalar=scale, name=em.sub(f"{what}_end"))
            extent = mx._internal._maximum_scalar(mx.broadcast_sub(end, start, name=em.sub(f"{what}_d")),
                                                  scalar=float(np.float32(0.1)), name=em.sub(f"{what}_extent"))
            bin_ = mx._internal._div_scalar(extent, scalar=float(g), name=em.sub(f"{what}_bin"))
            out = []
            for fn, grid, tag in ((mx.floor, bins, "lo"), (mx.ceil, bins1, "hi")):
                v = mx.broadcast_add(mx.broadcast_mul(grid, bin_, name=em.sub(f"{what}_{tag}_off")), start,
                                     name=em.sub(f"{what}_{tag}_pos"))
                v = fn(v, name=em.sub(f"{what}_{tag}_int"))
                v = mx._internal._minimum_scalar(mx._internal._maximum_scalar(v, scalar=0.0,
                                                                              name=em.sub(f"{what}_{tag}_ge0")),
                                                 scalar=float(size), name=em.sub(f"{what}_{tag}_clip"))
                out.append(mx.expand_dims(v, axis=2, name=em.sub(f"{what}_{tag}")))
            return out

        hs, he = edges(col[2], col[4], height, "h")
        ws, we = edges(col[1], col[3], width, "w")

        def mask(start, end, size, what):
            grid = em.const(f"{what}_grid", np.arange(size, dtype=np.float32).reshape(1, 1, size))
            return mx.broadcast_mul(mx.broadcast_greater_equal(grid, start, name=em.sub(f"{what}_ge")),
                                    mx.broadcast_lesser(grid, end, name=em.sub(f"{what}_lt")),
                                    name=em.sub(f"{what}_mask"))  # (r, g, size)

        mh, mw = mask(hs, he, height, "h"), mask(ws, we, width, "w")
        # bin (ph, pw) -> index ph*g + pw: rows masks repeat over pw, column masks over ph
        a = mx.reshape(mx.broadcast_axis(mx.expand_dims(mx.transpose(mh, axes=(1, 0, 2), name=em.sub("mh_t")), axis=1,
                                                        name=em.sub("mh_e")), axis=1, size=g, name=em.sub("mh_b")),
                       shape=(g * g, r, height), name=em.sub("rows"))
        b = mx.reshape(mx.broadcast_axis(mx.expand_dims(mx.transpose(mw, axes=(1, 0, 2), name=em.sub("mw_t")), axis=0,
                                                        name=em.sub("mw_e")), axis=0, size=g, name=em.sub("mw_b")),
                       shape=(g * g, r, 1, width), name=em.sub("cols"))
        hext = mx.broadcast_sub(he, hs, name=em.sub("h_len"))  # (r, g, 1)
        wext = mx.reshape(mx.broadcast_sub(we, ws, name=em.sub("w_len")), shape=(r, 1, g), name=em.sub("w_len_t"))
        area = mx.transpose(mx.broadcast_mul(hext, wext, name=em.sub("area")), axes=(1, 2, 0), name=em.sub("area_t"))
        area = mx._internal._maximum_scalar(mx.reshape(area, shape=(g * g, r, 1), name=em.sub("area_b")), scalar=1.0,
                                            name=em.sub("area_div"))
        per_image = []
        for i in range(n):
            xi = mx.slice_axis(x, axis=0, begin=i, end=i + 1, name=em.sub(f"img{i}")) if n > 1 else x
            xi = mx.reshape(mx.transpose(mx.reshape(xi, shape=(od, g * g, height, width), name=em.sub(f"x{i}_bins")),
                                         axes=(1, 2, 0, 3), name=em.sub(f"x{i}_t")),
                            shape=(g * g, height, od * width), name=em.sub(f"x{i}_rows"))
            t = mx.reshape(mx.batch_dot(a, xi, name=em.sub(f"x{i}_rowsum")), shape=(g * g, r, od, width),
                           name=em.sub(f"x{i}_rowsum_r"))
            s = mx.sum(mx.broadcast_mul(t, b, name=em.sub(f"x{i}_masked")), axis=3, name=em.sub(f"x{i}_sum"))
            avg = mx.broadcast_div(s, area, name=em.sub(f"x{i}_avg"))  # (g*g, r, od)
            if n > 1:
                sel = mx.broadcast_equal(mx.reshape(col[0], shape=(1, r, 1), name=em.sub(f"b{i}_r")),
                                         em.const(f"image{i}", np.full((1, 1, 1), i, np.float32)),
                                         name=em.sub(f"b{i}_is"))
                avg = mx.broadcast_mul(avg, sel, name=em.sub(f"x{i}_sel"))
            per_image.append(avg)
        out = per_image[0] if n == 1 else mx.add_n(*per_image, name=em.sub("images"))
        out = mx.transpose(out, axes=(1, 2, 0), name=em.sub("by_roi"))
        return [mx.reshape(out, shape=(r, od, g, g), name=em.name(node))]


# -- py-faster-rcnn's proposal layer --------------------------------------------------------------

def parse_param_str(text):
    """py-faster-rcnn's param_str, a YAML mapping of numbers and lists, as {key: value}.

    Read by a restricted parser rather than PyYAML: these strings take a handful of forms
    (`'feat_stride': 16`, `'scales': [8, 16, 32]`, `!!python/tuple [...]`), and a full YAML
    loader would be a new dependency and would honour tags such as `!!python/...`, which
    nothing read from a model file may do. Anything else raises ValueError.
    """
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    entries, depth, cur = [], 0, ""
    for ch in body:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if (ch in ",\n" and depth == 0) or depth < 0:
            entries.append(cur)
            cur = ""
            continue
        cur += ch
    entries.append(cur)
    out = {}
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        key, sep, value = entry.partition(":")
        key = key.strip().strip("'\"")
        if not sep or not key.replace("_", "").isalnum():
            raise ValueError(f"cannot read {entry!r} as key: value")
        value = value.strip()
        if value.startswith("!!python/tuple"):
            value = value[len("!!python/tuple"):].strip()
        if value[:1] in "[(" and value[-1:] in "])":
            out[key] = [_number(v) for v in value[1:-1].split(",") if v.strip()]
        else:
            out[key] = _number(value)
    return out


def _number(text):
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None


def proposal_config(node):
    """(feat_stride, scales) of a py-faster-rcnn proposal layer; ValueError naming what is wrong."""
    params = parse_param_str(node.param.python_param.param_str)
    unknown = sorted(set(params) - {"feat_stride", "scales"})
    if unknown:
        raise ValueError(f"param_str keys {unknown} are not ones rpn.proposal_layer reads (feat_stride, scales)")
    if "feat_stride" not in params:
        raise ValueError("param_str has no 'feat_stride'")
    stride = params["feat_stride"]
    scales = params.get("scales", [8, 16, 32])
    if not isinstance(stride, (int, float)) or stride <= 0:
        raise ValueError(f"feat_stride must be a positive number, got {stride!r}")
    if not isinstance(scales, list) or not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be a list of positive numbers, got {scales!r}")
    return stride, [float(s) for s in scales]


RATIOS = (0.5, 1.0, 2.0)


def base_anchors(stride, scales, base_size=16):
    """py-faster-rcnn's generate_anchors (ratios 0.5, 1, 2 x the scales; NumPy's round-half-even)."""
    w = h = float(base_size)
    cx = cy = 0.5 * (base_size - 1)
    ratios = np.asarray(RATIOS)
    ws = np.round(np.sqrt(w * h / ratios))
    hs = np.round(ws * ratios)
    ws = (ws[:, None] * np.asarray(scales)[None]).reshape(-1)
    hs = (hs[:, None] * np.asarray(scales)[None]).reshape(-1)
    return np.stack([cx - 0.5 * (ws - 1), cy - 0.5 * (hs - 1), cx + 0.5 * (ws - 1), cy + 0.5 * (hs - 1)], axis=1)


def all_anchors(stride, scales, height, width):
    """(H*W*A, 4) anchors in (h, w, a) order."""
    base = base_anchors(stride, scales)
    sx, sy = np.meshgrid(np.arange(width) * stride, np.arange(height) * stride)
    shifts = np.stack([sx.ravel(), sy.ravel(), sx.ravel(), sy.ravel()], axis=1)
    return (base[None] + shifts[:, None]).reshape(-1, 4)


def proposal_rows(node, in_shapes):
    """R, the converted layer's row count, and the number of anchors."""
    stride, scales = proposal_config(node)
    a = len(RATIOS) * len(scales)
    prob, deltas, info = in_shapes
    if len(prob) != 4 or len(deltas) != 4:
        raise ValueError(f"scores and deltas must be 4-D, got {list(prob)} and {list(deltas)}")
    if prob[0] != 1:
        raise ValueError("py-faster-rcnn's proposal layer takes a batch of one image")
    if prob[1] != 2 * a or deltas[1] != 4 * a or tuple(prob[2:]) != tuple(deltas[2:]):
        raise ValueError(f"{a} anchors need scores (1, {2 * a}, H, W) and deltas (1, {4 * a}, H, W), got "
                         f"{list(prob)} and {list(deltas)}")
    if int(np.prod(info[1:])) < 3:
        raise ValueError(f"im_info must hold (height, width, scale), got {list(info)}")
    count = a * prob[2] * prob[3]
    t = PROPOSAL_TEST
    pre = count if t["pre_nms_top_n"] <= 0 else min(t["pre_nms_top_n"], count)
    rows = pre if t["post_nms_top_n"] <= 0 else min(t["post_nms_top_n"], pre)
    return rows, count, pre


@register
class Python(LayerHandler):
    """Only py-faster-rcnn's `rpn.proposal_layer.ProposalLayer`; no Python module is ever imported."""

    types = ("Python",)
    n_bottoms = (0, 1 << 30)
    n_tops = (0, 1 << 30)
    mx_ops = ("slice_axis", "transpose", "Reshape", "broadcast_mul", "broadcast_add", "broadcast_sub", "exp",
              "_mul_scalar", "_plus_scalar", "broadcast_minimum", "_maximum_scalar", "broadcast_greater_equal",
              "elemwise_mul", "Concat", "_contrib_box_nms", "sum", "broadcast_mod", "take", "BlockGrad")
    notes = ("only py-faster-rcnn's rpn.proposal_layer.ProposalLayer (TEST: pre/post-NMS 6000/300, NMS 0.7, "
             "min size 16); fixed rows, repeated kept proposals as padding")

    def check(self, node):
        pp = node.param.python_param
        if (pp.module, pp.layer) not in PROPOSAL_MODULES:
            return [f"unsupported Python layer (module '{pp.module}', layer '{pp.layer}'): Python layers are never "
                    f"imported or run; only py-faster-rcnn's rpn.proposal_layer.ProposalLayer is converted"]
        problems = []
        if len(node.bottoms) != 3:
            problems.append(f"the proposal layer takes 3 bottoms (scores, deltas, im_info), got {len(node.bottoms)}")
        if len(node.tops) not in (1, 2):
            problems.append(f"the proposal layer produces rois (and scores), got {len(node.tops)} tops")
        try:
            proposal_config(node)
        except ValueError as exc:
            problems.append(f"python_param.param_str: {exc}")
        return problems

    def output_shapes(self, node, in_shapes):
        rows, _, _ = proposal_rows(node, in_shapes)
        return [(rows, 5), (rows, 1)][:len(node.tops)]

    def detection_layout(self, node, index):
        """How verify reads these tops: lists of rows compared by content (verify/detections.py)."""
        return (ROIS_LAYOUT, SCORES_LAYOUT)[index]

    def emit(self, node, inputs, em):
        mx = em.mx
        add, mul, sub = mx.broadcast_add, mx.broadcast_mul, mx.broadcast_sub
        scalar_mul, scalar_add = mx._internal._mul_scalar, mx._internal._plus_scalar
        shapes = em.in_shapes(node)
        stride, scales = proposal_config(node)
        rows, count, pre = proposal_rows(node, shapes)
        a = len(RATIOS) * len(scales)
        height, width = shapes[0][2:]
        t = PROPOSAL_TEST
        prob, deltas, info = inputs
        anchors = all_anchors(stride, scales, height, width).astype(np.float32)
        aw = anchors[:, 2] - anchors[:, 0] + 1.0
        ah = anchors[:, 3] - anchors[:, 1] + 1.0
        geometry = {"anchor_w": aw, "anchor_h": ah, "anchor_cx": anchors[:, 0] + 0.5 * aw,
                    "anchor_cy": anchors[:, 1] + 0.5 * ah}
        geo = {k: em.const(k, v.reshape(1, count, 1)) for k, v in geometry.items()}

        def hwa(x, channels, what):
            x = mx.transpose(x, axes=(0, 2, 3, 1), name=em.sub(f"{what}_hwc"))
            return mx.reshape(x, shape=(1, count, channels), name=em.sub(what))

        score = hwa(mx.slice_axis(prob, axis=1, begin=a, end=2 * a, name=em.sub("fg")), 1, "scores")
        d = hwa(deltas, 4, "deltas")
        dx, dy, dw, dh = (mx.slice_axis(d, axis=2, begin=i, end=i + 1, name=em.sub(f"d{i}")) for i in range(4))
        cx = add(mul(dx, geo["anchor_w"], name=em.sub("dx_w")), geo["anchor_cx"], name=em.sub("cx"))
        cy = add(mul(dy, geo["anchor_h"], name=em.sub("dy_h")), geo["anchor_cy"], name=em.sub("cy"))
        hw = scalar_mul(mul(mx.exp(dw, name=em.sub("ew")), geo["anchor_w"], name=em.sub("w")), scalar=0.5,
                        name=em.sub("half_w"))
        hh = scalar_mul(mul(mx.exp(dh, name=em.sub("eh")), geo["anchor_h"], name=em.sub("h")), scalar=0.5,
                        name=em.sub("half_h"))
        info = mx.reshape(info, shape=(1, -1), name=em.sub("im_info"))
        im = [mx.reshape(mx.slice_axis(info, axis=1, begin=i, end=i + 1, name=em.sub(f"im_{i}")), shape=(1, 1, 1),
                         name=em.sub(f"im_{i}_b")) for i in range(3)]
        limit = {"x": scalar_add(im[1], scalar=-1.0, name=em.sub("max_x")),
                 "y": scalar_add(im[0], scalar=-1.0, name=em.sub("max_y"))}

        def clipped(v, axis, what):
            v = mx.broadcast_minimum(v, limit[axis], name=em.sub(f"{what}_le"))
            return mx._internal._maximum_scalar(v, scalar=0.0, name=em.sub(what))

        x1 = clipped(sub(cx, hw, name=em.sub("x1_raw")), "x", "x1")
        y1 = clipped(sub(cy, hh, name=em.sub("y1_raw")), "y", "y1")
        x2 = clipped(add(cx, hw, name=em.sub("x2_raw")), "x", "x2")
        y2 = clipped(add(cy, hh, name=em.sub("y2_raw")), "y", "y2")
        min_size = scalar_mul(im[2], scalar=float(t["min_size"]), name=em.sub("min_size"))
        big_w = mx.broadcast_greater_equal(scalar_add(sub(x2, x1, name=em.sub("dxs")), scalar=1.0, name=em.sub("ws")),
                                           min_size, name=em.sub("ws_ok"))
        big_h = mx.broadcast_greater_equal(scalar_add(sub(y2, y1, name=em.sub("dys")), scalar=1.0, name=em.sub("hs")),
                                           min_size, name=em.sub("hs_ok"))
        keep = mx.elemwise_mul(big_w, big_h, name=em.sub("keep"))
        # kept: the score; filtered: -FLT_MAX, below box_nms's valid_thresh (a threshold of -FLT_MAX
        # itself reaches the operator as -inf, which would let -FLT_MAX through)
        filtered = scalar_mul(scalar_add(keep, scalar=-1.0, name=em.sub("drop")), scalar=FLT_MAX,
                              name=em.sub("drop_score"))
        score = add(mx.elemwise_mul(score, keep, name=em.sub("kept_score")), filtered, name=em.sub("nms_score"))
        ones = em.const("ones", np.ones((1, count, 1), np.float32))
        x2n = scalar_add(x2, scalar=1.0, name=em.sub("x2_nms"))  # box_nms's IoU has no +1: shift the far corner
        y2n = scalar_add(y2, scalar=1.0, name=em.sub("y2_nms"))
        table = mx.concat(ones, score, x1, y1, x2n, y2n, x2, y2, dim=2, name=em.sub("table"))
        kept = mx.contrib.box_nms(table, overlap_thresh=float(t["nms_thresh"]), valid_thresh=VALID,
                                  topk=pre if pre < count else -1, coord_start=2, score_index=1, id_index=-1,
                                  force_suppress=False, in_format="corner", out_format="corner", name=em.sub("nms"))
        kept = mx.reshape(mx.slice_axis(kept, axis=1, begin=0, end=rows, name=em.sub("post_nms")), shape=(rows, 8),
                          name=em.sub("kept"))
        flag = mx.slice_axis(kept, axis=1, begin=0, end=1, name=em.sub("flag"))  # 1 kept, -1 after the last
        n_kept = mx.sum(scalar_mul(scalar_add(flag, scalar=1.0, name=em.sub("flag1")), scalar=0.5,
                                   name=em.sub("is_kept")), name=em.sub("n_kept"))
        n_kept = mx._internal._maximum_scalar(n_kept, scalar=1.0, name=em.sub("n_cycle"))
        index = mx.broadcast_mod(em.const("positions", np.arange(rows, dtype=np.float32)), n_kept,
                                 name=em.sub("cycle"))
        table = mx.take(kept, index, axis=0, name=em.sub("padded"))
        zeros = em.const("batch_index", np.zeros((rows, 1), np.float32))
        rois = mx.concat(zeros, mx.slice_axis(table, axis=1, begin=2, end=4, name=em.sub("x1y1")),
                         mx.slice_axis(table, axis=1, begin=6, end=8, name=em.sub("x2y2")), dim=1, name=em.name(node))
        outs = [rois]
        if len(node.tops) > 1:
            outs.append(mx.slice_axis(table, axis=1, begin=1, end=2, name=em.sub("scores_out")))
        return outs
