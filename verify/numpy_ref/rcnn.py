"""Faster R-CNN and R-FCN layers as their Caffe forks compute them: ROIPooling
(caffe-fast-rcnn), PSROIPooling (R-FCN's kernel) and py-faster-rcnn's proposal layer.

Bin edges are integer decisions taken on float32 arithmetic in Caffe (`round`, `floor`,
`ceil` of float products); they are computed here in float32, step by step, so that a
float64 run does not move an edge the float32 Caffe would not. Pooled values are then
taken from the bottom in the compute dtype.

The proposal layer is written from py-faster-rcnn's lib/rpn (generate_anchors,
bbox_transform_inv, clip_boxes, _filter_boxes, nms): its Caffe output has as many rows as
proposals survive. The forward returns the converted layer's fixed layout: R rows, the
proposals then the same proposals again in order (see converter/layers/rcnn.py).
"""
import math

import numpy as np

from .registry import register

F32 = np.float32
TEST = {"pre_nms_top_n": 6000, "post_nms_top_n": 300, "nms_thresh": 0.7, "min_size": 16}


def _c_round(x):
    """C's round(): half away from zero (NumPy's round is half to even)."""
    t = np.trunc(x)
    return t + np.sign(x) * (np.abs(x - t) >= 0.5)


def _rois(call):
    rois = call.bottoms[1]
    if rois.size % 5 or rois.shape[0] * 5 != rois.size:
        raise call.error(f"the rois bottom must hold 5 values per ROI, got shape {list(rois.shape)}")
    return rois.reshape(-1, 5)


@register("ROIPooling")
def roi_pooling(call):
    """Max over each bin of the ROI scaled to the map; empty bins are 0 (ROIPoolingLayer::Forward_cpu)."""
    call.expect_bottoms(2)
    x = call.bottoms[0]
    rois = _rois(call).astype(F32)
    p = call.param.roi_pooling_param
    ph_n, pw_n = p.pooled_h, p.pooled_w
    if ph_n <= 0 or pw_n <= 0:
        raise call.error("pooled_h and pooled_w must be > 0")
    n, c, height, width = x.shape
    scale = F32(p.spatial_scale)
    out = np.empty((rois.shape[0], c, ph_n, pw_n), call.dtype)
    for r, roi in enumerate(rois):
        b = int(roi[0])
        if not 0 <= b < n:
            raise call.error(f"ROI {r} names image {b} of a batch of {n} (Caffe aborts)")
        x1, y1, x2, y2 = (int(_c_round(F32(v) * scale)) for v in roi[1:])
        roi_h, roi_w = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        bin_h, bin_w = F32(roi_h) / F32(ph_n), F32(roi_w) / F32(pw_n)
        for ph in range(ph_n):
            hs = min(max(int(math.floor(F32(ph) * bin_h)) + y1, 0), height)
            he = min(max(int(math.ceil(F32(ph + 1) * bin_h)) + y1, 0), height)
            for pw in range(pw_n):
                ws = min(max(int(math.floor(F32(pw) * bin_w)) + x1, 0), width)
                we = min(max(int(math.ceil(F32(pw + 1) * bin_w)) + x1, 0), width)
                if he <= hs or we <= ws:
                    out[r, :, ph, pw] = 0
                else:
                    out[r, :, ph, pw] = x[b, :, hs:he, ws:we].reshape(c, -1).max(axis=1)
    return [out]


@register("PSROIPooling")
def psroi_pooling(call):
    """Average of channel (ctop*g + ph)*g + pw over bin (ph, pw) of the ROI (R-FCN's PSROIPoolingForward)."""
    call.expect_bottoms(2)
    x = call.bottoms[0]
    rois = _rois(call).astype(F32)
    p = call.param.psroi_pooling_param
    g, od = p.group_size, p.output_dim
    n, c, height, width = x.shape
    if g <= 0 or od <= 0 or c != od * g * g:
        raise call.error(f"{c} channels do not fit output_dim {od} x group_size {g}^2")
    scale = F32(p.spatial_scale)
    out = np.zeros((rois.shape[0], od, g, g), call.dtype)
    for r, roi in enumerate(rois):
        b = int(roi[0])
        if not 0 <= b < n:
            raise call.error(f"ROI {r} names image {b} of a batch of {n}")
        start_w, start_h = F32(_c_round(roi[1])) * scale, F32(_c_round(roi[2])) * scale
        end_w, end_h = F32(_c_round(roi[3]) + 1) * scale, F32(_c_round(roi[4]) + 1) * scale
        bin_w = max(end_w - start_w, F32(0.1)) / F32(g)
        bin_h = max(end_h - start_h, F32(0.1)) / F32(g)
        for ph in range(g):
            hs = min(max(int(math.floor(F32(ph) * bin_h + start_h)), 0), height)
            he = min(max(int(math.ceil(F32(ph + 1) * bin_h + start_h)), 0), height)
            for pw in range(g):
                ws = min(max(int(math.floor(F32(pw) * bin_w + start_w)), 0), width)
                we = min(max(int(math.ceil(F32(pw + 1) * bin_w + start_w)), 0), width)
                if he <= hs or we <= ws:
                    continue
                chans = [(ct * g + ph) * g + pw for ct in range(od)]
                window = x[b, chans, hs:he, ws:we]
                out[r, :, ph, pw] = window.reshape(od, -1).sum(axis=1) / ((he - hs) * (we - ws))
    return [out]


# -- the proposal layer ---------------------------------------------------------------------------

def _params(call):
    """feat_stride and scales from param_str (the converter's restricted reader)."""
    from caffe2mx.converter.layers.rcnn import proposal_config
    try:
        return proposal_config(call.node)
    except ValueError as exc:
        raise call.error(f"python_param.param_str: {exc}") from None


def _anchors(scales, base_size=16):
    """generate_anchors: a (0, 0, 15, 15) window, per ratio (rounded sizes), per scale."""
    base = [0.0, 0.0, base_size - 1.0, base_size - 1.0]
    w, h = base[2] - base[0] + 1, base[3] - base[1] + 1
    cx, cy = base[0] + 0.5 * (w - 1), base[1] + 0.5 * (h - 1)
    out = []
    for ratio in (0.5, 1.0, 2.0):
        rw = np.round(np.sqrt(w * h / ratio))
        rh = np.round(rw * ratio)
        for s in scales:
            sw, sh = rw * s, rh * s
            out.append([cx - 0.5 * (sw - 1), cy - 0.5 * (sh - 1), cx + 0.5 * (sw - 1), cy + 0.5 * (sh - 1)])
    return np.asarray(out)


def _nms(dets, thresh):
    """Greedy NMS with py-faster-rcnn's +1 areas; suppress when IoU > thresh (its default GPU NMS)."""
    x1, y1, x2, y2, scores = dets.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = list(range(len(dets)))  # already sorted by score
    suppressed = np.zeros(len(dets), bool)
    keep = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2) - np.maximum(x1[i], x1) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2) - np.maximum(y1[i], y1) + 1)
        inter = w * h
        ovr = inter / (areas[i] + areas - inter)
        later = np.arange(len(dets)) > i
        suppressed |= later & (ovr > thresh)
    return keep


def proposals(scores_blob, deltas_blob, im_info, stride, scales, cfg=TEST):
    """ProposalLayer.forward: (rois (N, 5), scores (N, 1)) with N as many as survive."""
    a = 3 * len(scales)
    scores = scores_blob[:, a:, :, :]
    height, width = scores.shape[-2:]
    shift_x, shift_y = np.meshgrid(np.arange(width) * stride, np.arange(height) * stride)
    shifts = np.vstack((shift_x.ravel(), shift_y.ravel(), shift_x.ravel(), shift_y.ravel())).T
    anchors = (_anchors(scales)[None] + shifts[:, None]).reshape(-1, 4)
    deltas = deltas_blob.transpose(0, 2, 3, 1).reshape(-1, 4)
    scores = scores.transpose(0, 2, 3, 1).reshape(-1)
    widths = anchors[:, 2] - anchors[:, 0] + 1.0
    heights = anchors[:, 3] - anchors[:, 1] + 1.0
    ctr_x, ctr_y = anchors[:, 0] + 0.5 * widths, anchors[:, 1] + 0.5 * heights
    pcx, pcy = deltas[:, 0] * widths + ctr_x, deltas[:, 1] * heights + ctr_y
    pw, ph = np.exp(deltas[:, 2]) * widths, np.exp(deltas[:, 3]) * heights
    boxes = np.stack([pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph], axis=1)
    boxes[:, 0::2] = np.maximum(np.minimum(boxes[:, 0::2], im_info[1] - 1), 0)
    boxes[:, 1::2] = np.maximum(np.minimum(boxes[:, 1::2], im_info[0] - 1), 0)
    min_size = cfg["min_size"] * im_info[2]
    ws, hs = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    keep = np.where((ws >= min_size) & (hs >= min_size))[0]
    boxes, scores = boxes[keep], scores[keep]
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # stable: ties in anchor order
    if cfg["pre_nms_top_n"] > 0:
        order = order[:cfg["pre_nms_top_n"]]
    boxes, scores = boxes[order], scores[order]
    keep = _nms(np.hstack([boxes, scores[:, None]]), cfg["nms_thresh"]) if len(boxes) else []
    if cfg["post_nms_top_n"] > 0:
        keep = keep[:cfg["post_nms_top_n"]]
    rois = np.hstack([np.zeros((len(keep), 1)), boxes[keep]])
    return rois, scores[keep][:, None]


def fixed_rows(arr, rows, empty):
    """The converted layer's layout: `rows` rows, the array repeated in order; `empty` if it has none."""
    if len(arr) == 0:
        return np.tile(np.asarray(empty, float), (rows, 1))
    return arr[np.arange(rows) % len(arr)]


@register("Python")
def python_layer(call):
    """py-faster-rcnn's rpn.proposal_layer.ProposalLayer only; no Python module is imported."""
    pp = call.param.python_param
    if (pp.module, pp.layer) != ("rpn.proposal_layer", "ProposalLayer"):
        raise call.error(f"Python layer {pp.module}.{pp.layer} is not one the reference knows")
    call.expect_bottoms(3)
    stride, scales = _params(call)
    scores, deltas, info = call.bottoms
    if scores.shape[0] != 1:
        raise call.error("only single-image batches are supported (as in py-faster-rcnn)")
    count = scores.shape[2] * scores.shape[3] * 3 * len(scales)
    pre = min(TEST["pre_nms_top_n"], count) if TEST["pre_nms_top_n"] > 0 else count
    rows = min(TEST["post_nms_top_n"], pre) if TEST["post_nms_top_n"] > 0 else pre
    rois, kept = proposals(scores, deltas, info.reshape(-1), stride, scales)
    outs = [fixed_rows(rois, rows, [0, -1, -1, -1, -1]), fixed_rows(kept, rows, [-1])]
    return [o.astype(call.dtype) for o in outs[:len(call.node.tops)]]
