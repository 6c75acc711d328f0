"""SSD's layers (weiliu89/caffe, `ssd` branch): Normalize, Permute, PriorBox, DetectionOutput.

PriorBox depends only on shapes, so its output is computed here once and stored as a
constant (`_contrib_MultiBoxPrior` would not do: it takes sizes as fractions of the input,
pairs every size with the first ratio only, has no sqrt(min*max) prior, no variances and no
integer truncation of the sizes).

DetectionOutput is composed from MXNet ops: `_contrib_MultiBoxDetection` keeps one class per
prior (Caffe runs NMS for every class), takes its variances from a parameter instead of the
prior blob, and clips; `_contrib_box_nms` with `id_index` does exactly Caffe's per-class
greedy NMS (same IoU, strict `>` on both thresholds, stable order).

Caffe's DetectionOutput has a data-dependent row count; the converted layer has a fixed one
(`DetectionSettings.rows`, K): each image gets a block of K rows holding its detections in
Caffe's order (label ascending, score descending within a label), then padding rows
`[image, -1 x 6]`. When no image has a detection, row 0 of each block is exactly Caffe's own
"no detection" row. Exactly tied scores at a top_k or keep_top_k cut may keep a different
(equally scored) box than Caffe's CPU sort; verify pairs rows by content (verify/detections.py).
"""
from dataclasses import dataclass

import numpy as np

from .base import LayerHandler, register

FLT_MAX = float(np.finfo(np.float32).max)
#: row layout of DetectionOutput's top, for verify's detection comparison
DETECTION_LAYOUT = {"rows_axis": 2, "width": 7, "image": 0, "label": 1, "score": 2, "box": (3, 7), "pad": "label"}


def legacy_hw(shape):
    """Caffe's Blob::height()/width(): axes 2 and 3 of the shape padded with 1s to 4 axes."""
    s = tuple(shape) + (1,) * (4 - len(shape))
    return int(s[2]), int(s[3])


# -- Normalize ------------------------------------------------------------------------------------

@register
class Normalize(LayerHandler):
    """x / sqrt(sum x^2 + eps) over channels (per position) or over C*H*W, times a learned scale."""

    types = ("Normalize",)
    blob_names = ("scale",)
    mx_ops = ("L2Normalization", "broadcast_mul")
    notes = "4-D input; eps inside the square root, as SSD's Caffe"

    def output_shapes(self, node, in_shapes):
        if len(in_shapes[0]) != 4:
            raise ValueError(f"expects a 4-D input, got {list(in_shapes[0])}")
        return [in_shapes[0]]

    def blob_shapes(self, node, in_shapes):
        return [(1,) if node.param.norm_param.channel_shared else (in_shapes[0][1],)]

    def init_blobs(self, node, shapes, rng):
        f = node.param.norm_param.scale_filler
        value = f.value if node.param.norm_param.HasField("scale_filler") and f.type == "constant" else 1.0
        return [np.full(shapes[0], value, np.float32)]

    def sample_blobs(self, node, shapes, rng, options):
        return [rng.uniform(0.5, 20.0, shapes[0]).astype(np.float32)]

    def emit(self, node, inputs, em):
        p = node.param.norm_param
        mode = "instance" if p.across_spatial else "channel"
        y = em.mx.L2Normalization(inputs[0], mode=mode, eps=float(p.eps), name=em.sub("l2norm"))
        c = em.in_shapes(node)[0][1]
        scale = np.asarray(em.blobs(node)[0], np.float32).reshape((1, 1 if p.channel_shared else c, 1, 1))
        return [em.mx.broadcast_mul(y, em.param("scale", scale), name=em.name(node))]


# -- Permute --------------------------------------------------------------------------------------

def permute_order(node, ndim):
    """The full axis order: the given axes, then the others in their order (SSD's rule)."""
    order = [int(o) for o in node.param.permute_param.order]
    if any(o >= ndim for o in order):
        raise ValueError(f"permute_param.order {order} names an axis a {ndim}-D input does not have")
    if len(set(order)) != len(order):
        raise ValueError(f"permute_param.order {order} repeats an axis")
    return order + [a for a in range(ndim) if a not in order]


@register
class Permute(LayerHandler):
    types = ("Permute",)
    mx_ops = ("transpose", "_copy")

    def output_shapes(self, node, in_shapes):
        x = in_shapes[0]
        return [tuple(x[a] for a in permute_order(node, len(x)))]

    def emit(self, node, inputs, em):
        order = permute_order(node, len(em.in_shapes(node)[0]))
        if order == sorted(order):
            return [em.identity(inputs[0], em.name(node))]
        return [em.mx.transpose(inputs[0], axes=tuple(order), name=em.name(node))]


# -- PriorBox -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PriorSettings:
    min_sizes: tuple   # truncated to int, as SSD's PriorBox::Forward does
    max_sizes: tuple
    ratios: tuple      # 1 first, then each new ratio (and its inverse with flip)
    clip: bool
    variances: tuple   # 4 values
    img_hw: tuple      # (0, 0): from the second bottom
    step_hw: tuple     # (0, 0): image size / layer size
    offset: float

    @property
    def num_priors(self):
        return len(self.ratios) * len(self.min_sizes) + len(self.max_sizes)


def prior_problems(p):
    """What SSD's PriorBox::LayerSetUp would CHECK-fail on, as messages."""
    out = []
    if not p.min_size:
        out.append("prior_box_param.min_size is required")
    if any(m <= 0 for m in p.min_size):
        out.append("prior_box_param.min_size must be positive")
    if p.max_size and len(p.max_size) != len(p.min_size):
        out.append(f"{len(p.max_size)} max_size values for {len(p.min_size)} min_size values")
    elif any(hi <= lo for lo, hi in zip(p.min_size, p.max_size)):
        out.append("each max_size must be greater than its min_size")
    if len(p.variance) not in (0, 1, 4) or any(v <= 0 for v in p.variance):
        out.append(f"prior_box_param.variance takes 1 or 4 positive values, got {list(p.variance)}")
    if (p.HasField("img_h") or p.HasField("img_w")) and (p.HasField("img_size") or p.img_h <= 0 or p.img_w <= 0):
        out.append("give img_size, or both img_h and img_w (positive), not both forms")
    if p.HasField("img_size") and p.img_size <= 0:
        out.append("img_size must be positive")
    if (p.HasField("step_h") or p.HasField("step_w")) and (p.HasField("step") or p.step_h <= 0 or p.step_w <= 0):
        out.append("give step, or both step_h and step_w (positive), not both forms")
    if p.HasField("step") and p.step <= 0:
        out.append("step must be positive")
    return out


def prior_settings(p):
    ratios = [1.0]
    for ar in p.aspect_ratio:
        if all(abs(ar - r) >= 1e-6 for r in ratios):
            ratios.append(float(ar))
            if p.flip:
                ratios.append(float(np.float32(1.0 / ar)))  # Caffe keeps the inverse as a float
    variances = tuple(p.variance) * (4 if len(p.variance) == 1 else 1) if p.variance else (0.1,) * 4
    if p.HasField("img_h") or p.HasField("img_w"):
        img = (int(p.img_h), int(p.img_w))
    else:
        img = (int(p.img_size),) * 2 if p.HasField("img_size") else (0, 0)
    if p.HasField("step_h") or p.HasField("step_w"):
        step = (float(p.step_h), float(p.step_w))
    else:
        step = (float(p.step),) * 2 if p.HasField("step") else (0.0, 0.0)
    return PriorSettings(min_sizes=tuple(int(m) for m in p.min_size), max_sizes=tuple(int(m) for m in p.max_size),
                         ratios=tuple(ratios), clip=bool(p.clip), variances=tuple(float(v) for v in variances),
                         img_hw=img, step_hw=step, offset=float(p.offset))


def prior_boxes(s, layer_hw, image_hw):
    """PriorBox's top (1, 2, H*W*num_priors*4): corners normalised by the image size, then
    the variances; computed in float64, vectorised over the grid."""
    lh, lw = layer_hw
    ih, iw = s.img_hw if s.img_hw[0] and s.img_hw[1] else image_hw
    sh, sw = s.step_hw if s.step_hw[0] and s.step_hw[1] else (np.float32(ih) / np.float32(lh),
                                                              np.float32(iw) / np.float32(lw))
    sizes = []  # (box width, box height) per prior at one position, in Caffe's order
    for i, m in enumerate(s.min_sizes):
        sizes.append((m, m))
        if s.max_sizes:
            side = np.sqrt(m * s.max_sizes[i])
            sizes.append((side, side))
        sizes += [(m * np.sqrt(r), m / np.sqrt(r)) for r in s.ratios if abs(r - 1.0) >= 1e-6]
    bw, bh = (np.array(v, np.float64) for v in zip(*sizes))
    cx = (np.arange(lw, dtype=np.float64) + s.offset) * float(sw)
    cy = (np.arange(lh, dtype=np.float64) + s.offset) * float(sh)
    cy, cx = np.meshgrid(cy, cx, indexing="ij")
    cx, cy = cx[..., None], cy[..., None]
    boxes = np.stack([(cx - bw / 2) / iw, (cy - bh / 2) / ih, (cx + bw / 2) / iw, (cy + bh / 2) / ih], axis=-1)
    boxes = boxes.reshape(-1)
    if s.clip:
        boxes = np.clip(boxes, 0.0, 1.0)
    variances = np.tile(np.asarray(s.variances, np.float64), boxes.size // 4)
    return np.stack([boxes, variances])[None].astype(np.float32)


@register
class PriorBox(LayerHandler):
    """A constant of the layer and image sizes (computed at conversion, stored as a parameter)."""

    types = ("PriorBox",)
    n_bottoms = (1, 2)
    mx_ops = ("BlockGrad", "_copy")
    notes = "constant of the shapes; min/max sizes truncated to integers as SSD's PriorBox does"

    def check(self, node):
        problems = prior_problems(node.param.prior_box_param)
        s = prior_settings(node.param.prior_box_param) if not problems else None
        if s is not None and len(node.bottoms) == 1 and not (s.img_hw[0] and s.img_hw[1]):
            problems.append("with one bottom, give the image size (img_size or img_h/img_w)")
        return problems

    def output_shapes(self, node, in_shapes):
        h, w = legacy_hw(in_shapes[0])
        s = prior_settings(node.param.prior_box_param)
        return [(1, 2, h * w * s.num_priors * 4)]

    def emit(self, node, inputs, em):
        shapes = em.in_shapes(node)
        image = legacy_hw(shapes[1]) if len(shapes) > 1 else (0, 0)
        value = prior_boxes(prior_settings(node.param.prior_box_param), legacy_hw(shapes[0]), image)
        return [em.identity(em.const("priors", value), em.name(node))]


# -- DetectionOutput ------------------------------------------------------------------------------

@dataclass(frozen=True)
class DetectionSettings:
    num: int          # images
    priors: int       # P
    classes: int      # C
    loc_classes: int  # 1 when share_location, else C
    labels: tuple     # the classes NMS runs for (all but the background)
    per_class: int    # candidates per class: top_k, or every prior
    rows: int         # K, rows per image in the output


def detection_settings(node, in_shapes):
    """Sizes of a DetectionOutput, with Caffe's Reshape checks (ValueError on a mismatch)."""
    p = node.param.detection_output_param
    loc, conf, prior = in_shapes
    if int(np.prod(prior)) % 8 or len(prior) < 3 or prior[1] != 2:
        raise ValueError(f"the prior bottom must be PriorBox's (1, 2, 4*P), got {list(prior)}")
    priors = int(prior[2]) // 4
    if int(np.prod(prior)) != 8 * priors:
        raise ValueError(f"the prior bottom must be PriorBox's (1, 2, 4*P), got {list(prior)}")
    classes = int(p.num_classes)
    loc_classes = 1 if p.share_location else classes
    num = int(loc[0])
    if conf[0] != num:
        raise ValueError(f"location and confidence bottoms disagree on the batch ({loc[0]} vs {conf[0]})")
    if len(loc) < 2 or loc[1] != priors * loc_classes * 4 or int(np.prod(loc[1:])) != loc[1]:
        raise ValueError(f"{priors} priors need a location bottom of (N, {priors * loc_classes * 4}), got {list(loc)}")
    if len(conf) < 2 or conf[1] != priors * classes or int(np.prod(conf[1:])) != conf[1]:
        raise ValueError(f"{priors} priors and {classes} classes need a confidence bottom of "
                         f"(N, {priors * classes}), got {list(conf)}")
    labels = tuple(c for c in range(classes) if c != p.background_label_id)
    top_k = p.nms_param.top_k if p.nms_param.HasField("top_k") else -1
    per_class = priors if top_k <= -1 or top_k >= priors else int(top_k)
    total = len(labels) * per_class
    rows = total if p.keep_top_k <= -1 else min(int(p.keep_top_k), total)
    if (classes + 2) * rows >= 1 << 24:
        raise ValueError(f"{rows} output rows per image: set nms_param.top_k or keep_top_k (the converted layer "
                         f"orders rows by float32 integer keys, exact below 2^24)")
    return DetectionSettings(num=num, priors=priors, classes=classes, loc_classes=loc_classes, labels=labels,
                             per_class=per_class, rows=rows)


def _decode(em, loc, prior, s, p):
    """Decoded corners (N, L, P, 4) from the location bottom and PriorBox's blob."""
    mx, P, L = em.mx, s.priors, s.loc_classes
    pri = mx.reshape(prior, shape=(2, 1, P, 4), name=em.sub("prior"))
    box = mx.slice_axis(pri, axis=0, begin=0, end=1, name=em.sub("prior_box"))
    var = mx.slice_axis(pri, axis=0, begin=1, end=2, name=em.sub("prior_var"))
    if L > 1:
        loc = mx.transpose(mx.reshape(loc, shape=(s.num, P, L, 4), name=em.sub("loc")), axes=(0, 2, 1, 3),
                           name=em.sub("loc_by_class"))
    else:
        loc = mx.reshape(loc, shape=(s.num, 1, P, 4), name=em.sub("loc"))

    def col(x, i, what):
        return mx.slice_axis(x, axis=3, begin=i, end=i + 1, name=em.sub(what))

    names = ("xmin", "ymin", "xmax", "ymax")
    pb = [col(box, i, f"prior_{n}") for i, n in enumerate(names)]
    lc = [col(loc, i, f"loc_{i}") for i in range(4)]
    if not p.variance_encoded_in_target:
        lc = [mx.broadcast_mul(lc[i], col(var, i, f"var_{i}"), name=em.sub(f"loc_{i}_var")) for i in range(4)]
    add, mul, sub = mx.broadcast_add, mx.broadcast_mul, mx.broadcast_sub
    code = p.code_type
    if code == 1:  # CORNER
        out = [add(pb[i], lc[i], name=em.sub(names[i])) for i in range(4)]
    else:
        pw = sub(pb[2], pb[0], name=em.sub("prior_w"))
        ph = sub(pb[3], pb[1], name=em.sub("prior_h"))
        if code == 3:  # CORNER_SIZE
            size = (pw, ph, pw, ph)
            out = [add(pb[i], mul(lc[i], size[i], name=em.sub(f"d{i}")), name=em.sub(names[i])) for i in range(4)]
        else:  # CENTER_SIZE
            pcx = mx._internal._mul_scalar(add(pb[0], pb[2], name=em.sub("pcx2")), scalar=0.5, name=em.sub("pcx"))
            pcy = mx._internal._mul_scalar(add(pb[1], pb[3], name=em.sub("pcy2")), scalar=0.5, name=em.sub("pcy"))
            cx = add(mul(lc[0], pw, name=em.sub("dx")), pcx, name=em.sub("cx"))
            cy = add(mul(lc[1], ph, name=em.sub("dy")), pcy, name=em.sub("cy"))
            hw = mx._internal._mul_scalar(mul(mx.exp(lc[2], name=em.sub("ew")), pw, name=em.sub("w")), scalar=0.5,
                                          name=em.sub("half_w"))
            hh = mx._internal._mul_scalar(mul(mx.exp(lc[3], name=em.sub("eh")), ph, name=em.sub("h")), scalar=0.5,
                                          name=em.sub("half_h"))
            out = [sub(cx, hw, name=em.sub("xmin")), sub(cy, hh, name=em.sub("ymin")),
                   add(cx, hw, name=em.sub("xmax")), add(cy, hh, name=em.sub("ymax"))]
    return mx.concat(*out, dim=3, name=em.sub("decoded"))


def _without_background(em, x, axis, classes, labels, what):
    """x with the background class taken out along `axis` (the kept classes in order)."""
    if len(labels) == classes:
        return x
    bg = next(c for c in range(classes) if c not in labels)
    parts = [em.mx.slice_axis(x, axis=axis, begin=a, end=b, name=em.sub(f"{what}_{a}_{b}"))
             for a, b in ((0, bg), (bg + 1, classes)) if b > a]
    return parts[0] if len(parts) == 1 else em.mx.concat(*parts, dim=axis, name=em.sub(f"{what}_fg"))


@register
class DetectionOutput(LayerHandler):
    """Decoding, per-class top_k and NMS, keep_top_k, Caffe's row order; fixed row count."""

    types = ("DetectionOutput",)
    n_bottoms = (3, 3)
    mx_ops = ("Reshape", "slice_axis", "transpose", "broadcast_mul", "broadcast_add", "broadcast_sub",
              "_mul_scalar", "_plus_scalar", "exp", "Concat", "topk", "take", "broadcast_like",
              "_contrib_box_nms", "_lesser_scalar", "argsort", "BlockGrad")
    notes = ("fixed rows: keep_top_k per image (else every candidate), padded with [image, -1 x 6]; "
             "eta < 1 refused; files of save_output_param not written")

    def check(self, node):
        p = node.param.detection_output_param
        problems = []
        if not p.HasField("num_classes") or p.num_classes < 1:
            problems.append("detection_output_param.num_classes is required")
        elif p.num_classes - (0 <= p.background_label_id < p.num_classes) < 1:  # counted, not listed (uint32)
            problems.append("no class is left besides the background")
        if p.nms_param.eta != 1:
            problems.append(f"adaptive NMS (nms_param.eta {p.nms_param.eta} < 1) cannot be converted")
        if p.nms_param.nms_threshold < 0:
            problems.append("nms_param.nms_threshold must be non-negative")
        if p.nms_param.HasField("top_k") and p.nms_param.top_k == 0 or p.keep_top_k == 0:
            problems.append("top_k 0 or keep_top_k 0 keeps no detection")
        return problems

    def output_shapes(self, node, in_shapes):
        s = detection_settings(node, in_shapes)
        return [(1, 1, s.num * s.rows, 7)]

    def detection_layout(self, node, index):
        """How verify reads this top: a list of rows compared by content (verify/detections.py)."""
        p = node.param.detection_output_param
        return dict(DETECTION_LAYOUT, threshold=float(p.confidence_threshold) if p.HasField("confidence_threshold")
                    else None)

    def emit(self, node, inputs, em):
        mx = em.mx
        p = node.param.detection_output_param
        s = detection_settings(node, em.in_shapes(node))
        if p.save_output_param.output_directory or p.visualize:
            em.adjust(node, "save_output_param / visualize: the converted layer computes the detections only; "
                            "it writes no result file and shows no image")
        N, P, C, L, k, K = s.num, s.priors, s.classes, s.loc_classes, s.per_class, s.rows
        nc = len(s.labels)
        loc, conf, prior = inputs
        decoded = _decode(em, loc, prior, s, p)  # (N, L, P, 4)
        scores = mx.transpose(mx.reshape(conf, shape=(N, P, C), name=em.sub("conf")), axes=(0, 2, 1),
                              name=em.sub("conf_by_class"))
        scores = _without_background(em, scores, 1, C, s.labels, "conf")  # (N, nc, P)
        if k < P:
            idx = mx.topk(scores, axis=2, k=k, ret_typ="indices", is_ascend=False, name=em.sub("top_k"))
            # in prior order (Caffe's order among tied scores): the k indices sorted ascending
            idx = mx.topk(idx, axis=2, k=k, ret_typ="value", is_ascend=True, name=em.sub("top_k_by_prior"))
            box_off = np.array([[(n * L + (c if L > 1 else 0)) * P for c in s.labels] for n in range(N)], np.float32)
            score_off = (np.arange(N * nc, dtype=np.float32) * P).reshape(N, nc)
            flat_boxes = mx.reshape(decoded, shape=(N * L * P, 4), name=em.sub("flat_boxes"))
            boxes = mx.take(flat_boxes, mx.broadcast_add(idx, em.const("box_offsets", box_off[..., None]),
                                                         name=em.sub("box_index")), axis=0, name=em.sub("cand_boxes"))
            flat_scores = mx.reshape(scores, shape=(N * nc * P,), name=em.sub("flat_scores"))
            cand_scores = mx.take(flat_scores, mx.broadcast_add(idx, em.const("score_offsets", score_off[..., None]),
                                                                name=em.sub("score_index")),
                                  axis=0, name=em.sub("cand_scores"))
        else:
            boxes = decoded if L == 1 else _without_background(em, decoded, 1, C, s.labels, "boxes")
            cand_scores = scores
        score4 = mx.reshape(cand_scores, shape=(N, nc, k, 1), name=em.sub("cand_score"))
        if L == 1 and k == P:
            boxes = mx.broadcast_like(boxes, score4, lhs_axes=(1,), rhs_axes=(1,), name=em.sub("boxes_per_class"))
        labels = em.const("labels", np.asarray(s.labels, np.float32).reshape(1, nc, 1, 1))
        label4 = mx.broadcast_like(labels, score4, name=em.sub("cand_label"))
        cand = mx.reshape(mx.concat(label4, score4, boxes, dim=3, name=em.sub("cand_rows")), shape=(N, nc * k, 6),
                          name=em.sub("candidates"))
        thr = float(p.confidence_threshold) if p.HasField("confidence_threshold") else -FLT_MAX
        kept = mx.contrib.box_nms(cand, overlap_thresh=float(p.nms_param.nms_threshold), valid_thresh=thr, topk=-1,
                                  coord_start=2, score_index=1, id_index=0, background_id=-1, force_suppress=False,
                                  in_format="corner", out_format="corner", name=em.sub("nms"))
        kept = mx.slice_axis(kept, axis=1, begin=0, end=K, name=em.sub("keep_top_k"))  # score order
        # Caffe's order: label ascending, score order within a label; padding rows last
        label = mx.slice_axis(kept, axis=2, begin=0, end=1, name=em.sub("kept_label"))
        pad = mx._internal._lesser_scalar(label, scalar=0.0, name=em.sub("is_pad"))
        label = mx.broadcast_add(label, mx._internal._mul_scalar(pad, scalar=float(C + 1), name=em.sub("pad_last")),
                                 name=em.sub("order_label"))
        key = mx.broadcast_add(mx._internal._mul_scalar(label, scalar=float(K), name=em.sub("label_major")),
                               em.const("positions", np.arange(K, dtype=np.float32).reshape(1, K, 1)),
                               name=em.sub("order_key"))
        order = mx.argsort(mx.reshape(key, shape=(N, K), name=em.sub("keys")), axis=1, is_ascend=True,
                           name=em.sub("order"))
        order = mx.broadcast_add(order, em.const("row_offsets", (np.arange(N, dtype=np.float32) * K).reshape(N, 1)),
                                 name=em.sub("row_index"))
        rows = mx.take(mx.reshape(kept, shape=(N * K, 6), name=em.sub("flat_kept")), order, axis=0,
                       name=em.sub("ordered"))
        image = em.const("image_ids", np.repeat(np.arange(N, dtype=np.float32), K).reshape(N, K, 1))
        out = mx.concat(image, rows, dim=2, name=em.sub("rows"))
        return [mx.reshape(out, shape=(1, 1, N * K, 7), name=em.name(node))]
