"""The fork's Interp: align-corners bilinear resize to a size fixed at conversion time."""
from .base import LayerHandler, register


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
    mx_ops = ("slice", "_copy", "_contrib_BilinearResize2D")
    notes = "fork Interp (align-corners bilinear); output size fixed at conversion"
    n_bottoms = (1, 2)

    def output_shapes(self, node, in_shapes):
        _, _, oh, ow = interp_size(node, in_shapes)
        return [(in_shapes[0][0], in_shapes[0][1], oh, ow)]

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
        return [mx.contrib.BilinearResize2D(x, height=oh, width=ow, align_corners=True, name=nm)]
