"""The fork's Interp (align-corners bilinear resize, output size from exactly one spec) and the
forks' Upsample (SegNet's max-unpooling with a mask bottom; the YOLO ports' nearest neighbour).

Interp:

Sampling positions follow the fork's float32 arithmetic: ratio = float32(in - 1) / (out - 1),
position = float32(ratio * o), lower index its integer part. Computing the ratio in
float64 would move some positions across an integer and pick different neighbours.
"""
import numpy as np

from .registry import register


def output_size(call, h_eff, w_eff):
    p = call.param.interp_param
    specs = [name for name, given in (
        ("zoom_factor", p.HasField("zoom_factor")),
        ("shrink_factor", p.HasField("shrink_factor")),
        ("height/width", p.HasField("height") or p.HasField("width")),
        ("a second bottom", len(call.bottoms) == 2),
    ) if given]
    if len(specs) != 1:
        raise call.error("give the output size in exactly one way (zoom_factor, shrink_factor, "
                         f"height and width, or a second bottom); got {specs or 'none'}")
    spec = specs[0]
    if spec == "zoom_factor":
        if p.zoom_factor < 1:
            raise call.error(f"zoom_factor must be >= 1, got {p.zoom_factor}")
        return tuple(s + (s - 1) * (p.zoom_factor - 1) for s in (h_eff, w_eff))
    if spec == "shrink_factor":
        if p.shrink_factor < 1:
            raise call.error(f"shrink_factor must be >= 1, got {p.shrink_factor}")
        return tuple((s - 1) // p.shrink_factor + 1 for s in (h_eff, w_eff))
    if spec == "height/width":
        if not (p.HasField("height") and p.HasField("width")):
            raise call.error("height and width must be given together")
        return p.height, p.width
    ref = call.bottoms[1]
    if ref.ndim != 4:
        raise call.error(f"the second bottom must be 4-D, got shape {list(ref.shape)}")
    return ref.shape[2], ref.shape[3]


def taps(size_in, size_out):
    """Lower index, upper index and the two weights of every output position on one axis."""
    ratio = np.float32(size_in - 1) / np.float32(size_out - 1) if size_out > 1 else np.float32(0)
    pos = np.float32(ratio) * np.arange(size_out, dtype=np.float32)
    lo = pos.astype(np.int64)
    frac = (pos - lo.astype(np.float32)).astype(np.float64)
    hi = np.where(lo < size_in - 1, lo + 1, lo)
    return lo, hi, 1.0 - frac, frac


@register("Interp")
def interp(call):
    call.expect_bottoms(1, 2)
    x = call.bottoms[0]
    if x.ndim != 4:
        raise call.error(f"needs a 4-D NCHW bottom, got shape {list(x.shape)}")
    p = call.param.interp_param
    if p.pad_beg > 0 or p.pad_end > 0:
        raise call.error(f"pad_beg/pad_end only crop: they must be <= 0, got {p.pad_beg}, {p.pad_end}")
    h, w = x.shape[2:]
    h_eff, w_eff = h + p.pad_beg + p.pad_end, w + p.pad_beg + p.pad_end
    if h_eff < 1 or w_eff < 1:
        raise call.error(f"cropping {-p.pad_beg}+{-p.pad_end} leaves nothing of a {h}x{w} input")
    out_h, out_w = output_size(call, h_eff, w_eff)
    if out_h < 1 or out_w < 1:
        raise call.error(f"output size {out_h}x{out_w} is empty")
    src = x[:, :, -p.pad_beg:-p.pad_beg + h_eff, -p.pad_beg:-p.pad_beg + w_eff]
    if (h_eff, w_eff) == (out_h, out_w):
        return [src.copy()]
    r0, r1, h0, h1 = taps(h_eff, out_h)
    c0, c1, w0, w1 = taps(w_eff, out_w)
    dt = x.dtype
    h0, h1, w0, w1 = (a.astype(dt) for a in (h0, h1, w0, w1))
    top, bottom = src[:, :, r0], src[:, :, r1]
    hv, wv = (lambda a: a[:, None]), (lambda a: a[None, :])
    y = hv(h0) * (wv(w0) * top[..., c0] + wv(w1) * top[..., c1]) \
        + hv(h1) * (wv(w0) * bottom[..., c0] + wv(w1) * bottom[..., c1])
    return [y]


def _segnet_out(call, h, w):
    """SegNet's LayerSetUp/Reshape: upsample_h+upsample_w, else scale_h+scale_w (without
    scale), else scale (default 2); pad_out_* takes one off an axis whose scale is 2."""
    p = call.param.upsample_param
    given = {f for f in ("scale", "scale_h", "scale_w", "upsample_h", "upsample_w") if p.HasField(f)}
    if {"upsample_h", "upsample_w"} <= given:
        if min(p.upsample_h, p.upsample_w) < 2:
            raise call.error(f"upsample_h/upsample_w must be > 1, got {p.upsample_h}, {p.upsample_w}")
        return p.upsample_h, p.upsample_w
    if given & {"scale_h", "scale_w"}:
        if "scale" in given or not {"scale_h", "scale_w"} <= given:
            raise call.error("scale_h and scale_w go together, and without scale")
        scales = (p.scale_h, p.scale_w)
    else:
        scales = (p.scale, p.scale)
    if min(scales) < 2:
        raise call.error(f"scales must be > 1, got {scales}")
    pads = (p.pad_out_h, p.pad_out_w)
    if any(pad and s != 2 for pad, s in zip(pads, scales)):
        raise call.error("pad_out_h/pad_out_w need a scale of 2 on their axis")
    return h * scales[0] - int(pads[0]), w * scales[1] - int(pads[1])


def _unpool(call, x, mask):
    """Zero top; plane by plane, top[int(mask[i])] = x[i] for i in input order (the last write to
    an index stays). An index outside the plane aborts Caffe (or, if negative, writes outside
    the blob): here it is an error."""
    if mask.shape != x.shape:
        raise call.error(f"the mask has shape {list(mask.shape)}, the data {list(x.shape)}")
    n, c, h, w = x.shape
    out_h, out_w = _segnet_out(call, h, w)
    size = out_h * out_w
    idx = np.trunc(mask).reshape(n * c, h * w)  # static_cast<int>
    bad = (idx < 0) | (idx >= size) | ~np.isfinite(idx)
    if bad.any():
        raise call.error(f"mask index {mask.reshape(n * c, -1)[bad][0]!r} is outside the {out_h}x{out_w} output "
                         "plane (Caffe aborts): does the mask come from the pooling this Upsample undoes?")
    flat = (np.arange(n * c)[:, None] * size + idx.astype(np.int64)).ravel()
    vals = x.reshape(-1)
    # the last occurrence of every index wins: the first one in reversed order
    _, first_rev = np.unique(flat[::-1], return_index=True)
    keep = flat.size - 1 - first_rev
    out = np.zeros(n * c * size, dtype=x.dtype)
    out[flat[keep]] = vals[keep]
    return out.reshape(n, c, out_h, out_w)


@register("Upsample")
def upsample(call):
    call.expect_bottoms(1, 2)
    x = call.bottoms[0]
    if x.ndim != 4:
        raise call.error(f"needs a 4-D NCHW bottom, got shape {list(x.shape)}")
    if len(call.bottoms) == 2:
        return [_unpool(call, x, call.bottoms[1])]
    p = call.param.upsample_param
    segnet = [f for f in ("scale_h", "scale_w", "pad_out_h", "pad_out_w", "upsample_h", "upsample_w")
              if p.HasField(f)]
    if segnet:
        raise call.error(f"{segnet} need SegNet's mask bottom; one bottom means the nearest-neighbour Upsample")
    s = p.scale if p.HasField("scale") else 1  # the YOLO ports' default
    if s < 1:
        raise call.error(f"scale must be >= 1, got {s}")
    rows = np.arange(x.shape[2] * s) // s
    cols = np.arange(x.shape[3] * s) // s
    return [x[:, :, rows][:, :, :, cols]]
