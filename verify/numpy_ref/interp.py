"""The fork's Interp: align-corners bilinear resize, output size from exactly one spec.

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
