"""Reductions over given axes: sum, max, min (MXNet `mean` is in ops_math).

ONNX moved `axes` from an attribute to an input: ReduceSum at opset 13, ReduceMax and
ReduceMin at opset 18.
"""
from .registry import attr_bool, attr_tuple, translates

#: MXNet op -> (ONNX op, first opset taking axes as an input)
_REDUCE = {"sum": ("ReduceSum", 13), "max": ("ReduceMax", 18), "min": ("ReduceMin", 18)}


def _axes(node):
    rank = len(node.in_shapes[0])
    axes = attr_tuple(node.attrs, "axis")
    axes = tuple(range(rank)) if axes is None else tuple(a + rank if a < 0 else a for a in axes)
    if attr_bool(node.attrs, "exclude"):
        axes = tuple(a for a in range(rank) if a not in axes)
    return list(axes)


@translates(*_REDUCE)
def reduce(b, node):
    """MXNet reducing every axis without keepdims gives shape (1,), ONNX (): kept, then reshaped."""
    op, axes_input_from = _REDUCE[node.op]
    keep = int(attr_bool(node.attrs, "keepdims"))
    axes = _axes(node)
    whole = not keep and len(axes) == len(node.in_shapes[0])
    out = b.fresh(f"{node.name}/all") if whole else node.output
    if b.opset >= axes_input_from:
        b.add(op, [node.inputs[0], b.ints("axes", axes)], out, suffix="reduce" if whole else None,
              keepdims=1 if whole else keep)
    else:
        b.add(op, [node.inputs[0]], out, suffix="reduce" if whole else None, axes=axes, keepdims=1 if whole else keep)
    if whole:
        b.add("Reshape", [out, b.ints("shape", [1])], node.output)
