"""Input: the net's fed blobs (Input layers, and Caffe's `input` layer for `input:` fields);
Parameter: a learned blob that enters the net as a top."""
import numpy as np

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


def _parameter_shape(node):
    return tuple(int(d) for d in node.param.parameter_param.shape.dim)


@register
class Parameter(LayerHandler):
    """No bottom; its one blob (saved under the layer's name) is its top."""

    types = ("Parameter",)
    blob_names = ("value",)
    n_bottoms = (0, 0)
    mx_ops = ("_copy",)

    def check(self, node):
        p = node.param.parameter_param
        if not p.HasField("shape") or not p.shape.dim:
            return ["parameter_param.shape is missing"]
        return [] if min(p.shape.dim) > 0 else [f"parameter_param.shape {list(p.shape.dim)} has a zero or negative dim"]

    def output_shapes(self, node, in_shapes):
        return [_parameter_shape(node)]

    def blob_shapes(self, node, in_shapes):
        return [_parameter_shape(node)]

    def init_blobs(self, node, shapes, rng):
        return [rng.uniform(-1, 1, shapes[0]).astype(np.float32)]

    def emit(self, node, inputs, em):
        value = np.asarray(em.blobs(node)[0], np.float32).reshape(_parameter_shape(node))
        return [em.identity(em.param("value", value), em.name(node))]
