"""InnerProduct: a fully connected layer over everything from `axis` on; Embed: a table lookup."""
import math

import numpy as np

from .base import LayerHandler, canonical_axis, copy_param, int_fields, normal_blobs, register


@register
class InnerProduct(LayerHandler):
    types = ("InnerProduct",)
    notes = "any axis; transpose"
    blob_names = ("weight", "bias")
    mx_ops = ("FullyConnected", "Reshape")
    init_gain = True

    def check(self, node):
        p = node.param.inner_product_param
        if not p.HasField("num_output"):
            return ["inner_product_param.num_output is missing"]
        if p.num_output == 0:
            return ["inner_product_param.num_output is 0; it must be at least 1"]
        return int_fields(p, "inner_product_param", ("num_output",))

    def _split(self, node, shape):
        axis = canonical_axis(node.param.inner_product_param.axis, len(shape))
        if not 0 <= axis < len(shape):
            raise ValueError(f"axis {node.param.inner_product_param.axis} out of range for {list(shape)}")
        return axis, math.prod(shape[axis:])

    def output_shapes(self, node, in_shapes):
        axis, _ = self._split(node, in_shapes[0])
        return [tuple(in_shapes[0][:axis]) + (node.param.inner_product_param.num_output,)]

    def blob_shapes(self, node, in_shapes):
        p = node.param.inner_product_param
        _, k = self._split(node, in_shapes[0])
        shapes = [(k, p.num_output) if p.transpose else (p.num_output, k)]
        if p.bias_term:
            shapes.append((p.num_output,))
        return shapes

    def init_blobs(self, node, shapes, rng):
        p = node.param.inner_product_param
        k = shapes[0][0] if p.transpose else shapes[0][1]
        return normal_blobs(rng, shapes, np.sqrt(1.0 / k), 0.05)

    def emit(self, node, inputs, em):
        p = node.param.inner_product_param
        nm = em.name(node)
        blobs = em.blobs(node)
        weight = blobs[0].T if p.transpose else blobs[0]
        params = {"weight": em.param("weight", np.ascontiguousarray(weight))}
        if p.bias_term:
            params["bias"] = em.param("bias", blobs[1])
        axis, _ = self._split(node, em.in_shapes(node)[0])
        x = inputs[0]
        if axis == 1:
            return [em.mx.FullyConnected(x, num_hidden=p.num_output, no_bias=not p.bias_term, name=nm, **params)]
        x = em.mx.reshape(x, shape=(0,) * axis + (-1,), name=em.sub("flatten"))
        return [em.mx.FullyConnected(x, num_hidden=p.num_output, no_bias=not p.bias_term, flatten=False, name=nm,
                                     **params)]

    def fold_affine(self, node, in_shapes, scale, shift):
        """Only where the outputs lie on axis 1 (axis 1, so the top is (N, num_output)):
        output n's weights are scaled by scale[n], the bias becomes bias * scale + shift."""
        p = node.param.inner_product_param
        axis, _ = self._split(node, in_shapes[0])
        if axis != 1:
            return None
        w = np.asarray(node.blobs[0], np.float64)
        bias = np.asarray(node.blobs[1], np.float64).reshape(-1) if p.bias_term else np.zeros(p.num_output)
        w = w * (scale[None, :] if p.transpose else scale[:, None])
        param = copy_param(node.param)
        param.inner_product_param.bias_term = True
        return param, (w.astype(np.float32), (bias * scale + shift).astype(np.float32))

    def macs(self, node, in_shapes, out_shapes):
        _, k = self._split(node, in_shapes[0])
        return int(np.prod(out_shapes[0])) * k


@register
class Embed(LayerHandler):
    """Row `index` of the input_dim x num_output table (plus the bias) for every index in the
    bottom, which gains one trailing axis. Indices are floats truncated to integers; Caffe
    requires 0 <= index < input_dim (MXNet clips to the table)."""

    types = ("Embed",)
    blob_names = ("weight", "bias")
    mx_ops = ("Embedding", "broadcast_add")
    notes = "indices outside [0, input_dim) are clipped (undefined in Caffe)"

    def check(self, node):
        p = node.param.embed_param
        return [f"embed_param.{f} must be given and positive" for f in ("num_output", "input_dim")
                if not getattr(p, f)]

    def output_shapes(self, node, in_shapes):
        return [tuple(in_shapes[0]) + (node.param.embed_param.num_output,)]

    def blob_shapes(self, node, in_shapes):
        p = node.param.embed_param
        return [(p.input_dim, p.num_output)] + ([(p.num_output,)] if p.bias_term else [])

    def init_blobs(self, node, shapes, rng):
        return normal_blobs(rng, shapes, 1.0, 0.2)

    def emit(self, node, inputs, em):
        p = node.param.embed_param
        nm = em.name(node)
        blobs = em.blobs(node)
        table = np.asarray(blobs[0], np.float32).reshape(p.input_dim, p.num_output)
        y = em.mx.Embedding(inputs[0], weight=em.param("weight", table), input_dim=p.input_dim,
                            output_dim=p.num_output, name=em.sub("lookup") if p.bias_term else nm)
        if not p.bias_term:
            return [y]
        rank = len(em.in_shapes(node)[0]) + 1
        bias = np.asarray(blobs[1], np.float32).reshape((1,) * (rank - 1) + (p.num_output,))
        return [em.mx.broadcast_add(y, em.param("bias", bias), name=nm)]
