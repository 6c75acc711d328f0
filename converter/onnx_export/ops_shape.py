"""Ops that move data: Concat, slices, Reshape, Flatten, transpose, expand_dims, Pad and identities."""
import numpy as np

from .registry import Unsupported, attr_float, attr_int, attr_tuple, translates

INT64_MAX = np.iinfo(np.int64).max


@translates("_copy", "BlockGrad")
def identity(b, node):
    b.add("Identity", [node.inputs[0]], node.output)


@translates("Concat")
def concat(b, node):
    b.add("Concat", node.inputs, node.output, axis=attr_int(node.attrs, "dim", 1))


@translates("slice_axis")
def slice_axis(b, node):
    a = node.attrs
    end = attr_int(a, "end")
    b.add("Slice", [node.inputs[0], b.ints("starts", [attr_int(a, "begin", 0)]),
                    b.ints("ends", [INT64_MAX if end is None else end]),
                    b.ints("axes", [attr_int(a, "axis")])], node.output)


@translates("slice")
def slice_(b, node):
    a = node.attrs
    begin, end = attr_tuple(a, "begin"), attr_tuple(a, "end")
    step = attr_tuple(a, "step") or (None,) * len(begin)
    axes, starts, ends, steps = [], [], [], []
    for axis, (lo, hi, st) in enumerate(zip(begin, end, step)):
        if lo is None and hi is None and st in (None, 1):
            continue
        st = 1 if st is None else st
        if st < 0:
            raise Unsupported("slice with a negative step")
        axes.append(axis)
        starts.append(0 if lo is None else lo)
        ends.append(INT64_MAX if hi is None else hi)
        steps.append(st)
    if not axes:
        b.add("Identity", [node.inputs[0]], node.output)
        return
    b.add("Slice", [node.inputs[0], b.ints("starts", starts), b.ints("ends", ends), b.ints("axes", axes),
                    b.ints("steps", steps)], node.output)


@translates("Reshape")
def reshape(b, node):
    """0 (copy) and -1 (infer) mean the same in ONNX; other MXNet codes use the inferred shape."""
    a = node.attrs
    shape = attr_tuple(a, "shape")
    if shape is None or a.get("reverse", "False").lower() == "true" or any(d < -1 for d in shape):
        out = list(node.out_shape)
        if out and node.in_shapes[0] and out[0] == node.in_shapes[0][0]:
            out[0] = 0
        shape = out
    b.add("Reshape", [node.inputs[0], b.ints("shape", list(shape))], node.output)


@translates("expand_dims")
def expand_dims(b, node):
    b.add("Unsqueeze", [node.inputs[0], b.ints("axes", [attr_int(node.attrs, "axis")])], node.output)


@translates("Pad")
def pad(b, node):
    a = node.attrs
    mode = a.get("mode", "constant")
    if mode not in ("constant", "edge", "reflect"):
        raise Unsupported(f"pad mode {mode}")
    width = attr_tuple(a, "pad_width")
    pads = list(width[0::2]) + list(width[1::2])
    inputs = [node.inputs[0], b.ints("pads", pads)]
    if mode == "constant":
        inputs.append(b.scalar("pad_value", np.float32(attr_float(a, "constant_value", 0.0))))
    b.add("Pad", inputs, node.output, mode=mode)
