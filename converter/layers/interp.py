"""The fork's Interp: align-corners bilinear resize to a size fixed at conversion time."""
import numpy as np

from .base import LayerHandler, register


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
            return [mx.identity(x, name=nm)]
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
