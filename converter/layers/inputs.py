"""Input: the net's fed blobs (Input layers, and Caffe's `input` layer for `input:` fields)."""
from .base import LayerHandler, register


@register
class Input(LayerHandler):
    """One MXNet variable per top, named after the Caffe blob (what users feed as `data`)."""

    types = ("Input",)
    notes = "also `input:` fields (input_dim / input_shape)"
    n_bottoms = (0, 0)
    n_tops = (1, 1 << 30)

    def output_shapes(self, node, in_shapes):
        raise ValueError("an Input layer's shapes come from its input_param, not from bottoms")

    def emit(self, node, inputs, em):
        return [em.variable(t, em.shapes[t]) for t in node.tops]
