"""A caffe2mx plug-in: the fork layer `HSwish` (hard swish) with its `hswish_param`.

    caffe2mx convert  net.prototxt --proto hswish.proto --plugin hswish.py
    caffe2mx verify   net.prototxt --proto hswish.proto --plugin hswish.py
    caffe2mx export-onnx net.prototxt --proto hswish.proto --plugin hswish.py -o net.onnx

A plug-in registers, per layer type, the converter handler (shape, blobs, MXNet emission)
and the NumPy reference that verify compares it with, written from the layer's definition
and not from the emission. Both registries refuse a type that is already registered.
"""
import numpy as np

from caffe2mx.converter.layers import LayerHandler, register
from caffe2mx.verify.numpy_ref import register as reference


@register
class HSwish(LayerHandler):
    """y = x * clip(alpha * x + beta, 0, 1), element-wise: the output has the input's shape
    (LayerHandler's default output_shapes) and the layer has no blobs (default blob_shapes)."""

    types = ("HSwish",)
    # every MXNet operator emit() creates; each needs an ONNX translator for export-onnx
    mx_ops = ("_mul_scalar", "_plus_scalar", "clip", "elemwise_mul")
    notes = "plug-in example (examples/plugins/hswish.py)"

    def check(self, node):
        p = node.param.hswish_param
        return [] if p.alpha > 0 else [f"hswish_param.alpha must be positive, got {p.alpha}"]

    def emit(self, node, inputs, em):
        # Every MXNet node is named by the emitter: em.name(node) for the node whose output is
        # the top, em.sub(suffix) for helpers; the name map then knows they belong to this layer.
        p = node.param.hswish_param
        mx, x = em.mx, inputs[0]
        scaled = mx._internal._mul_scalar(x, scalar=float(p.alpha), name=em.sub("scaled"))
        shifted = mx._internal._plus_scalar(scaled, scalar=float(p.beta), name=em.sub("shifted"))
        gate = mx.clip(shifted, a_min=0.0, a_max=1.0, name=em.sub("gate"))
        return [mx.elemwise_mul(x, gate, name=em.name(node))]


@reference("HSwish")
def hswish(call):
    """Caffe's forward of the fork layer, in NumPy (float64 when verify runs it)."""
    call.expect_bottoms(1)
    x = call.bottoms[0]
    p = call.param.hswish_param
    return [x * np.minimum(np.maximum(p.alpha * x + p.beta, 0.0), 1.0)]
