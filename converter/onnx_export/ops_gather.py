"""Ops that copy elements to new places: transpose, tile, broadcast_like, and the gather
Embedding (MXNet truncates float indices to integers and clips them to the valid range, so
the translation casts to int64 and clips the same way). `take` is in ops_upsample."""
import numpy as np

from .registry import Unsupported, attr_int, attr_tuple, translates


@translates("transpose")
def transpose(b, node):
    axes = attr_tuple(node.attrs, "axes")
    rank = len(node.in_shapes[0])
    b.add("Transpose", [node.inputs[0]], node.output, perm=list(axes) if axes else list(range(rank))[::-1])


@translates("tile")
def tile(b, node):
    reps = list(attr_tuple(node.attrs, "reps"))
    rank = len(node.in_shapes[0])
    if len(reps) != rank:
        raise Unsupported(f"tile reps {reps} for a {rank}-D input")
    b.add("Tile", [node.inputs[0], b.ints("repeats", reps)], node.output)


@translates("broadcast_like")
def broadcast_like(b, node):
    """Expand to the other input's shape, over every axis or only the chosen ones."""
    lhs, rhs = node.inputs[:2]
    lhs_axes, rhs_axes = attr_tuple(node.attrs, "lhs_axes"), attr_tuple(node.attrs, "rhs_axes")
    shape = b.add("Shape", [rhs], suffix="shape")
    if not lhs_axes:
        b.add("Expand", [lhs, shape], node.output)
        return
    rank, rrank = len(node.in_shapes[0]), len(node.in_shapes[1])
    pick = {a % rank: r % rrank for a, r in zip(lhs_axes, rhs_axes)}
    parts = [b.add("Gather", [shape, b.ints("axis", [pick[i]])], suffix=f"dim{i}", axis=0) if i in pick
             else b.ints("one", [1]) for i in range(rank)]
    b.add("Expand", [lhs, b.add("Concat", parts, suffix="target", axis=0)], node.output)


def _gather(b, node, table, index, rows, axis):
    from onnx import TensorProto
    index = b.add("Cast", [index], suffix="index", to=TensorProto.INT64)
    index = b.add("Clip", [index, b.ints("first", np.int64(0)), b.ints("last", np.int64(rows - 1))], suffix="clip")
    b.add("Gather", [table, index], node.output, axis=axis)


@translates("Embedding")
def embedding(b, node):
    _gather(b, node, node.inputs[1], node.inputs[0], attr_int(node.attrs, "input_dim"), 0)
