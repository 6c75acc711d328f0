"""The ops of the Upsample layer: nearest-neighbour UpSampling, and the index ops that compose
SegNet's max-unpooling (Cast, index arrays, sort, take, index_copy).

The unpooling graph (converter/layers/interp.py) does its index arithmetic in int64 and its
flag arithmetic in float32 with small integers, so every translation here is exact:
`sort` becomes TopK over the whole axis (values only), `take` a Gather with MXNet's
clipping of indices, `_contrib_index_copy` a ScatterND whose indices the emitter made
distinct (ONNX leaves repeated indices undefined).
"""
import numpy as np

from .registry import Unsupported, attr_bool, attr_float, attr_int, attr_tuple, translates

#: MXNet dtype names -> onnx.TensorProto enum values (onnx imported lazily like the rest)
_DTYPES = {"float32": 1, "uint8": 2, "int8": 3, "int32": 6, "int64": 7, "float16": 10, "float64": 11}


@translates("Cast")
def cast(b, node):
    dtype = node.attrs.get("dtype", "float32")
    if dtype not in _DTYPES:
        raise Unsupported(f"Cast to {dtype}")
    b.add("Cast", [node.inputs[0]], node.output, to=_DTYPES[dtype])


def _dim(b, x, axis, hint):
    """Size of axis `axis` of x, as a 0-d int64 tensor (dynamic: the batch may vary)."""
    shape = b.add("Shape", [x], suffix=f"{hint}_shape")
    return b.add("Gather", [shape, b.const(f"{hint}_axis", np.asarray(axis, np.int64), np.int64)], suffix=f"{hint}_dim",
                 axis=0)


@translates("_contrib_index_array")
def index_array(b, node):
    """int64 coordinates of every element along `axes` (all axes when unset), stacked last."""
    x, rank = node.inputs[0], len(node.in_shapes[0])
    axes = attr_tuple(node.attrs, "axes")
    axes = list(range(rank)) if axes is None else [a + rank if a < 0 else a for a in axes]
    shape = b.add("Shape", [x], suffix="shape")
    zero, one = b.const("zero", np.asarray(0, np.int64), np.int64), b.const("one", np.asarray(1, np.int64), np.int64)
    coords = []
    for a in axes:
        ramp = b.add("Range", [zero, _dim(b, x, a, f"axis{a}"), one], suffix=f"range{a}")
        along = [1] * rank
        along[a] = -1
        ramp = b.add("Reshape", [ramp, b.ints(f"along{a}", along)], suffix=f"ramp{a}")
        full = b.add("Expand", [ramp, shape], suffix=f"coord{a}")
        coords.append(b.add("Unsqueeze", [full, b.ints("last", [rank])], suffix=f"coord{a}_last"))
    if len(coords) == 1:
        b.add("Identity", coords, node.output)
    else:
        b.add("Concat", coords, node.output, axis=rank)


@translates("sort")
def sort(b, node):
    """The sorted values of one axis: TopK over the whole axis (ties cannot reorder values)."""
    a = node.attrs
    rank = len(node.in_shapes[0])
    axis = attr_int(a, "axis", -1)
    if a.get("axis") == "None":
        raise Unsupported("sort over the flattened array (axis=None)")
    axis = axis + rank if axis < 0 else axis
    shape = b.add("Shape", [node.inputs[0]], suffix="shape")
    k = b.add("Gather", [shape, b.ints("axis", [axis])], suffix="k", axis=0)
    b.add("TopK", [node.inputs[0], k], node.output, axis=axis, largest=0 if attr_bool(a, "is_ascend", True) else 1,
          sorted=1)
    b.nodes[-1].output.append(b.fresh(f"{node.name}/order"))  # TopK's second output (indices), unused


@translates("take")
def take(b, node):
    """Gather; MXNet's default mode `clip` clamps indices into range, ONNX would fail on them."""
    a = node.attrs
    mode = a.get("mode", "clip")
    if mode == "wrap":
        raise Unsupported("take with mode=wrap")
    axis = attr_int(a, "axis", 0)
    axis = axis + len(node.in_shapes[0]) if axis < 0 else axis
    data, idx = node.inputs[0], b.add("Cast", [node.inputs[1]], suffix="index_i64", to=_DTYPES["int64"])
    if mode == "clip":
        last = b.add("Sub", [_dim(b, data, axis, "data"), b.const("one", np.asarray(1, np.int64), np.int64)],
                     suffix="last_index")
        idx = b.add("Clip", [idx, b.const("zero", np.asarray(0, np.int64), np.int64), last], suffix="index_clipped")
    b.add("Gather", [data, idx], node.output, axis=axis)


@translates("_contrib_index_copy")
def index_copy(b, node):
    """old with rows index[k] replaced by new[k] (indices distinct by construction)."""
    old, index, new = node.inputs
    idx = b.add("Cast", [index], suffix="index_i64", to=_DTYPES["int64"])
    idx = b.add("Unsqueeze", [idx, b.ints("last", [1])], suffix="index_column")
    b.add("ScatterND", [old, idx, new], node.output)


@translates("UpSampling")
def upsampling(b, node):
    """Nearest neighbour by an integer scale: Resize with floor(out / scale) as the source index."""
    a = node.attrs
    if a.get("sample_type", "nearest") != "nearest" or len(node.inputs) != 1:
        raise Unsupported("UpSampling other than nearest-neighbour of one input")
    s = attr_float(a, "scale", 1.0)
    scales = b.const("scales", np.asarray([1.0, 1.0, s, s], np.float32))
    b.add("Resize", [node.inputs[0], "", scales], node.output, mode="nearest",
          coordinate_transformation_mode="asymmetric", nearest_mode="floor")
