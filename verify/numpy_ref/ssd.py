"""SSD's layers as weiliu89/caffe (`ssd` branch) computes them: Normalize, Permute, PriorBox,
DetectionOutput. Written as loops over Caffe's own structure (per image, per class, per
kept box), not from the vectorised MXNet emission.

DetectionOutput's Caffe result has a data-dependent row count (`caffe_detections`); the
forward returns it in the converted layer's fixed layout (`fixed_rows`): K rows per image,
Caffe's rows first, then `[image, -1, -1, -1, -1, -1, -1]`.
"""
import math

import numpy as np

from .registry import register

FLT_MAX = float(np.finfo(np.float32).max)


def _hw(shape):
    s = tuple(shape) + (1,) * (4 - len(shape))
    return s[2], s[3]


@register("Normalize")
def normalize(call):
    """y = x / sqrt(eps + sum of squares) * scale; the sum over C*H*W per sample, or over C per position."""
    call.expect_bottoms(1)
    call.expect_blobs(1)
    x = call.bottoms[0]
    if x.ndim != 4:
        raise call.error(f"needs a 4-D bottom, got shape {list(x.shape)}")
    p = call.param.norm_param
    eps = call.dtype(p.eps)
    if p.across_spatial:
        norm = np.sqrt((x * x).reshape(x.shape[0], -1).sum(axis=1) + eps).reshape(-1, 1, 1, 1)
    else:
        norm = np.sqrt((x * x).sum(axis=1, keepdims=True) + eps)
    c = x.shape[1]
    scale = call.blob(0, (1,) if p.channel_shared else (c,)).reshape(1, -1, 1, 1)
    return [x / norm * scale]


@register("Permute")
def permute(call):
    call.expect_bottoms(1)
    x = call.bottoms[0]
    order = list(call.param.permute_param.order)
    if len(set(order)) != len(order) or any(o >= x.ndim for o in order):
        raise call.error(f"permute_param.order {order} is not a set of axes of a {x.ndim}-D bottom")
    order += [a for a in range(x.ndim) if a not in order]
    return [np.ascontiguousarray(np.transpose(x, order))]


def _aspect_ratios(p):
    ratios = [1.0]
    for ar in p.aspect_ratio:
        if not any(math.fabs(ar - r) < 1e-6 for r in ratios):
            ratios.append(ar)
            if p.flip:
                ratios.append(float(np.float32(1.0 / ar)))
    return ratios


def _given_hw(p, single, h, w):
    """(h, w) from a PriorBox field pair (h/w first, then the single value), None if unset."""
    if p.HasField(h) or p.HasField(w):
        return getattr(p, h), getattr(p, w)
    if p.HasField(single):
        return getattr(p, single), getattr(p, single)
    return None


@register("PriorBox")
def prior_box(call):
    """Corners of every prior, cell by cell, then the variances (SSD's PriorBox::Forward_cpu)."""
    call.expect_bottoms(1, 2)
    p = call.param.prior_box_param
    if not p.min_size:
        raise call.error("prior_box_param.min_size is required")
    layer_h, layer_w = _hw(call.bottoms[0].shape)
    img = _given_hw(p, "img_size", "img_h", "img_w")
    if img is None:
        if len(call.bottoms) < 2:
            raise call.error("the image size comes from the second bottom, which is missing")
        img = _hw(call.bottoms[1].shape)
    img_h, img_w = img
    step = _given_hw(p, "step", "step_h", "step_w")
    if step is not None:
        step_h, step_w = step
    else:
        step_w = float(np.float32(img_w) / np.float32(layer_w))
        step_h = float(np.float32(img_h) / np.float32(layer_h))
    ratios = _aspect_ratios(p)
    out = []
    for h in range(layer_h):
        for w in range(layer_w):
            center_x = (w + p.offset) * step_w
            center_y = (h + p.offset) * step_h
            for s, min_size in enumerate(p.min_size):
                min_size = int(min_size)  # SSD's Forward stores the size in an int
                sides = [(min_size, min_size)]
                if p.max_size:
                    side = math.sqrt(min_size * int(p.max_size[s]))
                    sides.append((side, side))
                for ar in ratios:
                    if math.fabs(ar - 1.0) >= 1e-6:
                        sides.append((min_size * math.sqrt(ar), min_size / math.sqrt(ar)))
                for bw, bh in sides:
                    out += [(center_x - bw / 2.0) / img_w, (center_y - bh / 2.0) / img_h,
                            (center_x + bw / 2.0) / img_w, (center_y + bh / 2.0) / img_h]
    boxes = np.asarray(out, call.dtype)
    if p.clip:
        boxes = np.minimum(np.maximum(boxes, 0.0), 1.0)
    var = list(p.variance) or [0.1]
    if len(var) not in (1, 4):
        raise call.error(f"prior_box_param.variance takes 1 or 4 values, got {len(var)}")
    variances = np.resize(np.asarray(var, call.dtype), boxes.size)
    return [np.stack([boxes, variances])[None]]


# -- DetectionOutput ------------------------------------------------------------------------------

def _decode(prior, var, loc, code, encoded):
    """One box (xmin, ymin, xmax, ymax) from its prior, the prior's variances and the prediction."""
    v = (1.0, 1.0, 1.0, 1.0) if encoded else var
    if code == 1:  # CORNER
        return [prior[i] + v[i] * loc[i] for i in range(4)]
    pw, ph = prior[2] - prior[0], prior[3] - prior[1]
    if pw <= 0 or ph <= 0:
        raise ValueError("a prior has no width or height")
    if code == 3:  # CORNER_SIZE
        size = (pw, ph, pw, ph)
        return [prior[i] + v[i] * loc[i] * size[i] for i in range(4)]
    cx = v[0] * loc[0] * pw + (prior[0] + prior[2]) / 2.0
    cy = v[1] * loc[1] * ph + (prior[1] + prior[3]) / 2.0
    w, h = math.exp(v[2] * loc[2]) * pw, math.exp(v[3] * loc[3]) * ph
    return [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]


def _size(b):
    return 0.0 if b[2] < b[0] or b[3] < b[1] else (b[2] - b[0]) * (b[3] - b[1])


def _jaccard(a, kept):
    """IoU of box `a` with each row of `kept` (N, 4): Caffe's JaccardOverlap, normalised boxes."""
    disjoint = (kept[:, 0] > a[2]) | (kept[:, 2] < a[0]) | (kept[:, 1] > a[3]) | (kept[:, 3] < a[1])
    iw = np.minimum(kept[:, 2], a[2]) - np.maximum(kept[:, 0], a[0])
    ih = np.minimum(kept[:, 3], a[3]) - np.maximum(kept[:, 1], a[1])
    inter = np.where(disjoint | (iw <= 0) | (ih <= 0), 0.0, iw * ih)
    sizes = np.where((kept[:, 2] < kept[:, 0]) | (kept[:, 3] < kept[:, 1]), 0.0,
                     (kept[:, 2] - kept[:, 0]) * (kept[:, 3] - kept[:, 1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(inter > 0, inter / (_size(a) + sizes - inter), 0.0)


def nms_fast(boxes, scores, threshold, nms_threshold, top_k):
    """ApplyNMSFast: scores above threshold, stable sort descending, top_k, greedy IoU <= nms."""
    order = sorted((j for j in range(len(scores)) if scores[j] > threshold), key=lambda j: -scores[j])
    if top_k > -1:
        order = order[:top_k]
    kept = []
    for j in order:
        if not kept or np.all(_jaccard(boxes[j], boxes[kept]) <= nms_threshold):
            kept.append(j)
    return kept


def caffe_detections(p, loc, conf, prior):
    """DetectionOutput::Forward_cpu: (1, 1, num_kept, 7), with Caffe's fake rows when nothing is kept."""
    num = loc.shape[0]
    priors = prior.shape[2] // 4
    classes = p.num_classes
    loc_classes = 1 if p.share_location else classes
    pri = prior.reshape(2, priors, 4)
    loc = loc.reshape(num, priors, loc_classes, 4)
    conf = conf.reshape(num, priors, classes)
    threshold = p.confidence_threshold if p.HasField("confidence_threshold") else -FLT_MAX
    top_k = p.nms_param.top_k if p.nms_param.HasField("top_k") else -1
    rows = []
    for i in range(num):
        decoded = {}
        for c in range(loc_classes):
            label = -1 if p.share_location else c
            decoded[label] = np.array([_decode(pri[0, j], pri[1, j], loc[i, j, c], p.code_type,
                                               p.variance_encoded_in_target) for j in range(priors)])
        indices = {}
        for c in range(classes):
            if c == p.background_label_id:
                continue
            boxes = decoded[-1 if p.share_location else c]
            indices[c] = nms_fast(boxes, conf[i, :, c], threshold, p.nms_param.nms_threshold, top_k)
        if p.keep_top_k > -1 and sum(len(v) for v in indices.values()) > p.keep_top_k:
            pairs = [(conf[i, j, c], c, j) for c in sorted(indices) for j in indices[c]]
            pairs = sorted(pairs, key=lambda t: -t[0])[:p.keep_top_k]
            indices = {}
            for _, c, j in pairs:
                indices.setdefault(c, []).append(j)
        for c in sorted(indices):
            boxes = decoded[-1 if p.share_location else c]
            rows += [[i, c, conf[i, j, c]] + list(boxes[j]) for j in indices[c]]
    if not rows:
        rows = [[i] + [-1.0] * 6 for i in range(num)]
    return np.asarray(rows, np.float64).reshape(1, 1, -1, 7)


def detection_rows_per_image(p, priors, classes):
    labels = [c for c in range(classes) if c != p.background_label_id]
    top_k = p.nms_param.top_k if p.nms_param.HasField("top_k") else -1
    per_class = priors if top_k <= -1 or top_k >= priors else top_k
    total = len(labels) * per_class
    return total if p.keep_top_k <= -1 else min(p.keep_top_k, total)


def fixed_rows(detections, num, rows):
    """Caffe's rows laid out as the converted layer does: `rows` per image, padded with
    [image, -1 x 6] (Caffe's "no detection" row is such a padding row)."""
    out = np.full((num, rows, 7), -1.0)
    out[:, :, 0] = np.arange(num)[:, None]
    d = detections.reshape(-1, 7)
    for i in range(num):
        mine = d[(d[:, 0] == i) & (d[:, 1] != -1)]
        out[i, :len(mine)] = mine
    return out.reshape(1, 1, num * rows, 7)


@register("DetectionOutput")
def detection_output(call):
    call.expect_bottoms(3)
    loc, conf, prior = call.bottoms
    p = call.param.detection_output_param
    if p.nms_param.eta != 1:
        raise call.error("adaptive NMS (eta < 1) is not implemented")
    priors = prior.shape[2] // 4
    try:
        dets = caffe_detections(p, loc, conf, prior)
    except ValueError as exc:
        raise call.error(str(exc)) from None
    rows = detection_rows_per_image(p, priors, p.num_classes)
    return [fixed_rows(dets, loc.shape[0], rows).astype(call.dtype)]
