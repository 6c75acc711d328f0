"""Resizing layers: the fork's Interp (align-corners bilinear, size fixed at conversion time)
and the forks' Upsample (SegNet's max-unpooling by a pooling mask, or nearest neighbour)."""
import numpy as np

from .base import LayerHandler, need_rank, register


def interp_matrix(size_in, size_out):
    """(size_out, size_in) matrix of the fork's align-corners taps on one axis, in its float32
    arithmetic: ratio = float32(in - 1) / (out - 1), position = float32(ratio * o), the lower
    neighbour its integer part (the upper one clamped to the last row)."""
    ratio = np.float32(size_in - 1) / np.float32(size_out - 1) if size_out > 1 else np.float32(0)
    pos = np.float32(ratio) * np.arange(size_out, dtype=np.float32)
    lo = pos.astype(np.int64)
    frac = (pos - lo.astype(np.float32)).astype(np.float64)
    hi = np.where(lo < size_in - 1, lo + 1, lo)
    m = np.zeros((size_out, size_in))
    np.add.at(m, (np.arange(size_out), lo), 1.0 - frac)
    np.add.at(m, (np.arange(size_out), hi), frac)
    return m


def interp_size(node, in_shapes):
    """Caffe fork's output (height, width): zoom, shrink, height+width, or the second bottom."""
    p = node.param.interp_param
    h, w = in_shapes[0][2], in_shapes[0][3]
    if p.pad_beg > 0 or p.pad_end > 0:
        raise ValueError("interp_param.pad_beg/pad_end must be zero or negative (cropping)")
    he, we = h + p.pad_beg + p.pad_end, w + p.pad_beg + p.pad_end
    if he <= 0 or we <= 0:
        raise ValueError(f"cropping leaves {he}x{we} of a {h}x{w} input")
    modes = [m for m, on in (("second bottom", len(in_shapes) > 1), ("zoom_factor", p.HasField("zoom_factor")),
                             ("shrink_factor", p.HasField("shrink_factor")),
                             ("height/width", p.HasField("height") or p.HasField("width"))) if on]
    if len(modes) != 1:
        raise ValueError("give the output size exactly one way (second bottom, zoom_factor, shrink_factor or "
                         f"height+width); found {', '.join(modes) or 'none'}")
    mode = modes[0]
    if mode == "second bottom":
        return he, we, in_shapes[1][2], in_shapes[1][3]
    if mode == "zoom_factor":
        z = p.zoom_factor
        if z < 1:
            raise ValueError("zoom_factor must be >= 1")
        return he, we, he + (he - 1) * (z - 1), we + (we - 1) * (z - 1)
    if mode == "shrink_factor":
        s = p.shrink_factor
        if s < 1:
            raise ValueError("shrink_factor must be >= 1")
        return he, we, (he - 1) // s + 1, (we - 1) // s + 1
    if not (p.height > 0 and p.width > 0):
        raise ValueError("height and width must both be positive")
    return he, we, p.height, p.width


@register
class Interp(LayerHandler):
    types = ("Interp",)
    mx_ops = ("slice", "_copy", "_contrib_BilinearResize2D", "FullyConnected", "transpose")
    notes = "fork Interp (align-corners bilinear); output size fixed at conversion"
    n_bottoms = (1, 2)

    def output_shapes(self, node, in_shapes):
        for i, s in enumerate(in_shapes):
            need_rank(s, 4, what="input" if i == 0 else "second bottom")
        _, _, oh, ow = interp_size(node, in_shapes)
        return [(in_shapes[0][0], in_shapes[0][1], oh, ow)]

    def identity(self, node, in_shapes):
        p = node.param.interp_param
        he, we, oh, ow = interp_size(node, in_shapes)
        return not (p.pad_beg or p.pad_end) and (he, we) == (oh, ow)

    def emit(self, node, inputs, em):
        mx, nm = em.mx, em.name(node)
        in_shapes = em.in_shapes(node)
        he, we, oh, ow = interp_size(node, in_shapes)
        p = node.param.interp_param
        x = inputs[0]
        if p.pad_beg or p.pad_end:
            h, w = in_shapes[0][2:]
            x = mx.slice(x, begin=(None, None, -p.pad_beg, -p.pad_beg),
                         end=(None, None, h + p.pad_end, w + p.pad_end), name=em.sub("crop"))
        if (he, we) == (oh, ow):
            return [em.identity(x, nm)]
        if em.options.get("optimized"):
            return [self._by_matrices(x, (he, we), (oh, ow), em, nm)]
        return [mx.contrib.BilinearResize2D(x, height=oh, width=ow, align_corners=True, name=nm)]

    @staticmethod
    def _by_matrices(x, size_in, size_out, em, nm):
        """The optimised model: y = Rh x Rw^T per channel, as two FullyConnected over the last
        axis with a transpose after each. MXNet's BilinearResize2D walks the channels with a
        stride and slows down 30x from batch 1 to batch 8; these are GEMMs (same taps)."""
        mx = em.mx
        (he, we), (oh, ow) = size_in, size_out
        t = mx.FullyConnected(x, weight=em.param("resize_w", interp_matrix(we, ow)), num_hidden=ow, no_bias=True,
                              flatten=False, name=em.sub("along_w"))
        t = mx.transpose(t, axes=(0, 1, 3, 2), name=em.sub("swap_hw"))
        t = mx.FullyConnected(t, weight=em.param("resize_h", interp_matrix(he, oh)), num_hidden=oh, no_bias=True,
                              flatten=False, name=em.sub("along_h"))
        return mx.transpose(t, axes=(0, 1, 3, 2), name=nm)


# --------------------------------------------------------------------------------------------
# Upsample: SegNet's max-unpooling (two bottoms) and the YOLO ports' nearest neighbour (one)
# --------------------------------------------------------------------------------------------

#: SegNet-only fields of upsample_param (the YOLO ports' UpsampleParameter has only `scale`)
SEGNET_FIELDS = ("scale_h", "scale_w", "pad_out_h", "pad_out_w", "upsample_h", "upsample_w")
#: per-plane sizes past this lose integer exactness in the float32 index arithmetic
MAX_PLANE = 1 << 24


def segnet_size(p, h, w):
    """SegNet's output (height, width), with the checks of its LayerSetUp.

    Caffe accepts upsample_h+upsample_w, or scale_h+scale_w without scale, or neither of
    scale_h/scale_w (then `scale`, default 2); a lone upsample_h or upsample_w is ignored
    there, as SegNet ignores it. pad_out_* subtracts one and needs that axis's scale == 2.
    """
    has = p.HasField
    if has("upsample_h") and has("upsample_w"):
        if p.upsample_h <= 1 or p.upsample_w <= 1:
            raise ValueError(f"upsample_h and upsample_w must be > 1, got {p.upsample_h}x{p.upsample_w}")
        return int(p.upsample_h), int(p.upsample_w)
    if has("scale_h") or has("scale_w"):
        if has("scale") or not (has("scale_h") and has("scale_w")):
            raise ValueError("give upsample_h and upsample_w, or scale, or scale_h and scale_w together "
                             "(without scale)")
        sh, sw = int(p.scale_h), int(p.scale_w)
    else:
        sh = sw = int(p.scale)
    if sh <= 1 or sw <= 1:
        raise ValueError(f"the scale must be > 1, got {sh}x{sw}")
    for axis, pad, s in (("h", p.pad_out_h, sh), ("w", p.pad_out_w, sw)):
        if pad and s != 2:
            raise ValueError(f"pad_out_{axis} needs scale_{axis} == 2 (the output size is ill-defined otherwise)")
    return h * sh - int(p.pad_out_h), w * sw - int(p.pad_out_w)


def nearest_scale(p):
    """The YOLO ports' `scale` (their default is 1); SegNet's other fields have no meaning there."""
    extra = [f for f in SEGNET_FIELDS if p.HasField(f)]
    if extra:
        raise ValueError(f"{', '.join(extra)} belong to SegNet's unpooling Upsample (two bottoms: data and the "
                         f"pooling mask); the one-bottom nearest-neighbour Upsample takes only scale")
    s = int(p.scale) if p.HasField("scale") else 1
    if s < 1:
        raise ValueError(f"scale must be >= 1, got {s}")
    return s


@register
class Upsample(LayerHandler):
    """Two bottoms (data, mask): SegNet's max-unpooling. Caffe zeroes the top and, plane by
    plane, writes each data value at the flat index `int(mask)` of an out_h x out_w plane, in
    input order, so where two inputs name one index the later one wins.

    MXNet has no unpooling op, so the scatter is composed: the plane is flattened, each write
    gets a global flat index (row * plane size + index, in int64) and `_contrib_index_copy`
    puts the values into a zero map (ONNX: ScatterND). Scatters with repeated indices are
    unordered in MXNet (OpenMP) and undefined in ONNX, so where the mask could repeat an
    index the ties are settled first: the keys (index + 1) * L + position are unique, sorted
    per plane, and only the last write of each index keeps its target; the others, and any
    index outside the plane, are sent to spare slots past the plane, dropped afterwards.
    When the mask comes straight from a MAX Pooling whose windows cannot overlap (kernel <=
    stride, or global) and cannot be empty, and whose input plane fits the output plane, its
    indices are distinct and in range by construction, and the sort is skipped.

    One bottom: the nearest-neighbour Upsample of the YOLOv3 Caffe ports (`upsample_param {
    scale: s }`, no mask): out[y][x] = in[y / s][x / s], output s times the input.
    """

    types = ("Upsample",)
    n_bottoms = (1, 2)
    mx_ops = ("UpSampling", "_copy", "Reshape", "Cast", "BlockGrad", "_contrib_index_array", "broadcast_mul",
              "broadcast_add", "broadcast_sub", "broadcast_div", "zeros_like", "Pad", "_contrib_index_copy",
              "slice_axis", "clip", "sort", "take", "Concat", "abs", "_plus_scalar", "_mul_scalar", "elemwise_mul")
    notes = ("2 bottoms (data, pooling mask): SegNet max-unpooling, later write wins on ties, every size form; "
             "1 bottom: the YOLO ports' nearest neighbour by `scale` (default 1). Mask indices outside the "
             "plane (Caffe aborts) write nothing")

    def check(self, node):
        p = node.param.upsample_param
        try:
            if len(node.bottoms) == 1:
                nearest_scale(p)
            else:
                segnet_size(p, 1, 1)
        except ValueError as exc:
            return [str(exc)]
        return []

    def output_shapes(self, node, in_shapes):
        x = in_shapes[0]
        if len(x) != 4:
            raise ValueError(f"needs a 4-D NCHW bottom, got {list(x)}")
        p = node.param.upsample_param
        if len(in_shapes) == 1:
            s = nearest_scale(p)
            return [(x[0], x[1], x[2] * s, x[3] * s)]
        if tuple(in_shapes[1]) != tuple(x):
            raise ValueError(f"the mask {list(in_shapes[1])} must have the data's shape {list(x)}")
        oh, ow = segnet_size(p, x[2], x[3])
        if oh * ow + x[2] * x[3] >= MAX_PLANE:
            raise ValueError(f"planes of {oh}x{ow} are too large for exact float32 index arithmetic")
        return [(x[0], x[1], oh, ow)]

    def emit(self, node, inputs, em):
        mx, nm = em.mx, em.name(node)
        if len(inputs) == 1:
            s = nearest_scale(node.param.upsample_param)
            if s == 1:
                return [em.identity(inputs[0], nm)]
            return [mx.UpSampling(inputs[0], scale=s, sample_type="nearest", num_args=1, name=nm)]
        return [_unpool(em, node, inputs[0], inputs[1], nm, distinct=_mask_is_distinct(em, node))]


def _mask_is_distinct(em, node):
    """True where the mask is the second top of a MAX Pooling whose indices are provably
    distinct and inside the output plane (see Upsample)."""
    from .pooling import geometry, has_empty_window  # the pooling family's own window geometry
    mask = node.bottoms[1]
    prod = next((n for n in em.graph.nodes if mask in n.tops), None)
    if prod is None or prod.type != "Pooling" or len(prod.tops) != 2 or prod.tops[1] != mask:
        return False
    p = prod.param.pooling_param
    x = em.shapes[prod.bottoms[0]]
    out = em.shapes[prod.tops[0]]
    _, _, oh, ow = em.out_shapes(node)[0]
    if p.pool != p.MAX or len(x) != 4 or x[2] * x[3] > oh * ow or out[2] * out[3] > oh * ow:
        return False
    if p.global_pooling:
        return True
    k, s, pad = geometry(prod, x)
    if has_empty_window(x, out[2:], s, pad):
        return False
    return k[0] <= s[0] and k[1] <= s[1]


def _int64(em, suffix, value):
    """A 1x1 int64 constant (stored as a float32 parameter, exact below 2^24)."""
    return em.mx.Cast(em.const(suffix, np.array([[value]], np.float32)), dtype="int64", name=em.sub(f"{suffix}_i64"))


def _unpool(em, node, data, mask, name, distinct):
    """out[r, idx] = data[r, i] per plane r, later i winning; see Upsample for the method."""
    mx = em.mx
    _, c, h, w = em.in_shapes(node)[0]
    _, _, oh, ow = em.out_shapes(node)[0]
    size_in, size_out = h * w, oh * ow
    plane = size_out if distinct else size_out + size_in  # spare slots past the plane for dropped writes
    rows_m = mx.reshape(mask, shape=(-1, size_in), name=em.sub("mask_rows"))
    row = mx.reshape(mx.contrib.index_array(rows_m, axes=(0,), name=em.sub("row_index")), shape=(0, -1),
                     name=em.sub("row"))
    values = mx.reshape(data, shape=(-1,), name=em.sub("values"))
    if distinct:
        target = mx.Cast(rows_m, dtype="int64", name=em.sub("target"))
    else:
        target, values = _settle_ties(em, rows_m, row, values, size_in, size_out)
    flat = mx.broadcast_add(mx.broadcast_mul(row, _int64(em, "plane", plane), name=em.sub("row_base")), target,
                            name=em.sub("flat_target"))
    zeros = mx.reshape(mx.zeros_like(data, name=em.sub("zeros")), shape=(-1, 1, 1, size_in), name=em.sub("zero_rows"))
    if plane > size_in:
        zeros = mx.pad(zeros, mode="constant", pad_width=(0, 0, 0, 0, 0, 0, 0, plane - size_in), constant_value=0,
                       name=em.sub("zero_plane"))
    zeros = mx.reshape(zeros, shape=(-1,), name=em.sub("zero_flat"))
    out = mx.contrib.index_copy(zeros, mx.reshape(flat, shape=(-1,), name=em.sub("flat")), values,
                                name=em.sub("scatter"))
    if plane != size_out:
        out = mx.slice_axis(mx.reshape(out, shape=(-1, plane), name=em.sub("planes")), axis=1, begin=0, end=size_out,
                            name=em.sub("crop"))
    return mx.reshape(out, shape=(-1, c, oh, ow), name=name)


def _settle_ties(em, rows_m, row, values, size_in, size_out):
    """Distinct per-plane targets and the values in their order: writes sorted by (index, input
    position); the last write of each in-plane index keeps it, every other write goes to its
    own spare slot size_out + (sorted position)."""
    mx = em.mx

    def plus(x, value, suffix):
        return mx._internal._plus_scalar(x, scalar=float(value), name=em.sub(suffix))

    def times(x, value, suffix):
        return mx._internal._mul_scalar(x, scalar=float(value), name=em.sub(suffix))

    length = _int64(em, "row_len", size_in)
    pos = mx.reshape(mx.contrib.index_array(rows_m, axes=(1,), name=em.sub("pos_index")), shape=(0, -1),
                     name=em.sub("pos"))
    # Caffe's int(mask): clip first (out-of-plane stays out, at -1 or size_out), then truncate
    index = mx.Cast(mx.clip(rows_m, -1, size_out, name=em.sub("clip")), dtype="int64", name=em.sub("index"))
    shifted = mx.broadcast_add(index, _int64(em, "one", 1), name=em.sub("index1"))  # >= 0: division floors
    key = mx.broadcast_add(mx.broadcast_mul(shifted, length, name=em.sub("key_hi")), pos, name=em.sub("key"))
    ordered = mx.sort(key, axis=-1, name=em.sub("sorted"))
    slot1 = mx.broadcast_div(ordered, length, name=em.sub("slot1"))  # index + 1, in sorted order
    source = mx.broadcast_sub(ordered, mx.broadcast_mul(slot1, length, name=em.sub("slot1_base")),
                              name=em.sub("source"))
    s1 = mx.Cast(slot1, dtype="float32", name=em.sub("slot1_f"))  # small integers: exact in float32
    # 1 <= index + 1 <= size_out, as 0/1: clip(s1, 0, 1) * clip(size_out + 1 - s1, 0, 1)
    room = plus(times(s1, -1, "neg"), size_out + 1, "room")
    keep = mx.elemwise_mul(mx.clip(s1, 0, 1, name=em.sub("above0")), mx.clip(room, 0, 1, name=em.sub("below_end")),
                           name=em.sub("inside"))
    if size_in > 1:  # the last of each run of equal indices: its successor differs (-1 after the end)
        first = mx.slice_axis(s1, axis=1, begin=0, end=1, name=em.sub("first"))
        sentinel = plus(times(first, 0, "zero_col"), -1, "sentinel")
        following = mx.concat(mx.slice_axis(s1, axis=1, begin=1, end=None, name=em.sub("next_slots")), sentinel,
                              dim=1, name=em.sub("following"))
        step = mx.abs(mx.broadcast_sub(s1, following, name=em.sub("step")), name=em.sub("step_abs"))
        keep = mx.elemwise_mul(keep, mx.clip(step, 0, 1, name=em.sub("last")), name=em.sub("keep"))
    spare = plus(mx.Cast(pos, dtype="float32", name=em.sub("pos_f")), size_out, "spare")
    goal = plus(s1, -1, "goal")
    jump = mx.elemwise_mul(keep, mx.broadcast_sub(goal, spare, name=em.sub("jump")), name=em.sub("kept_jump"))
    target = mx.Cast(mx.broadcast_add(spare, jump, name=em.sub("target_f")), dtype="int64", name=em.sub("target"))
    src = mx.broadcast_add(mx.broadcast_mul(row, length, name=em.sub("src_base")), source, name=em.sub("src"))
    values = mx.take(values, mx.reshape(src, shape=(-1,), name=em.sub("src_flat")), axis=0,
                     name=em.sub("sorted_values"))
    return target, values
