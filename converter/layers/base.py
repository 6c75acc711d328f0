"""Layer handler base class and registry: one handler per Caffe type string.

A handler is the one table of everything caffe2mx knows about a Caffe layer type: its
shape rule, blob names and shapes, MXNet emission (and the MXNet ops it may create), seeded
initialisation and calibration, sample values for parity sweeps, cost, and restrictions.
Code outside `converter/layers/` asks the handler instead of switching on type strings.
"""
import sys

import numpy as np

_HANDLERS = {}


def register(cls):
    """Class decorator: register a handler under each type string in `cls.types`.

    A type registered twice (two handlers, or a plug-in naming a built-in type) is an
    error naming both, and nothing of `cls` is registered then.
    """
    if isinstance(cls.types, str) or not cls.types:
        raise ValueError(f"{describe(cls)}: `types` must be a non-empty tuple of Caffe type strings")
    for t in cls.types:
        if t in _HANDLERS:
            raise ValueError(f"layer type '{t}' is registered twice: by {describe(type(_HANDLERS[t]))} and by "
                             f"{describe(cls)}")
    for t in cls.types:
        _HANDLERS[t] = cls()
    return cls


def describe(obj):
    """`module.Name`, plus the file for code loaded from a plug-in file (whose module name is made up)."""
    module = sys.modules.get(obj.__module__)
    where = f"{obj.__module__}.{obj.__qualname__}"
    path = getattr(module, "__file__", None)
    return f"{where} ({path})" if path and getattr(module, "__caffe2mx_plugin__", False) else where


def handler_for(type_):
    return _HANDLERS.get(type_)


def is_internal(type_):
    """Types that passes create (e.g. `_BatchNormScale`); a prototxt may never name them."""
    return type_.startswith("_")


def supported_types():
    return sorted(t for t in _HANDLERS if not is_internal(t))


def all_handlers():
    """{type: handler} including internal types, for tests and the generated layer table."""
    return dict(_HANDLERS)


class LayerHandler:
    """Shape rule, blob shapes, MXNet emission, weight init and cost of one Caffe layer type.

    `in_shapes`/`out_shapes` are tuples of ints (batch included). Emission receives MXNet
    symbols for the node's bottoms and returns one symbol per top; every MXNet node it
    creates is named through the emitter (`em.name`, `em.sub`, `em.param`, `em.const`), so
    the name map knows which Caffe layer owns it.
    """

    types = ()
    #: names of the node's blobs, in Caffe order (used in the name map and errors)
    blob_names = ()
    n_bottoms = (1, 1)  # inclusive range
    n_tops = (1, 1)
    #: MXNet operators emit() may create; a test ties them to the ONNX translators
    mx_ops = ()
    #: seeded weights scale blob 0 by a random per-layer gain (layers that set activation scale)
    init_gain = False
    #: restrictions worth a user's attention, shown in the generated supported-layers table
    notes = ""

    def check(self, node):
        """Problems with the node's parameters this handler cannot convert, as messages."""
        return []

    def output_shapes(self, node, in_shapes):
        return [in_shapes[0]]

    def blob_shapes(self, node, in_shapes):
        return []

    def emit(self, node, inputs, em):
        raise NotImplementedError

    def init_blobs(self, node, shapes, rng):
        return [np.zeros(s, np.float32) for s in shapes]

    def calibrate(self, node, x, blobs, rng):
        """Seeded weights: statistic blobs redrawn from the activations `x` the layer sees,
        or None where the layer keeps no statistics."""
        return None

    def sample_blobs(self, node, shapes, rng, options):
        """Blobs for a one-layer parity case: standard normal unless the layer needs a range."""
        return [rng.standard_normal(s).astype(np.float32) for s in shapes]

    def macs(self, node, in_shapes, out_shapes):
        return 0

    def workspace(self, node, in_shapes, out_shapes):
        """Elements of temporaries a forward pass of this layer allocates beyond its bottoms
        and tops (e.g. im2col columns), for the memory budget (converter/budget.py)."""
        return 0

    def reduction_length(self, node, in_shapes, out_shapes):
        """How many input values one output value sums over (a convolution's C_in/group*kh*kw,
        an inner product's K): float32 rounding grows with it, so verify's per-layer
        tolerance does. Default: the multiply-adds per output value, at least 1."""
        out = int(np.prod(out_shapes[0])) if out_shapes else 0
        return max(1, self.macs(node, in_shapes, out_shapes) // out) if out else 1

    # -- hooks of the inference optimiser (converter/optimize.py) ------------------------------
    def identity(self, node, in_shapes):
        """True where every top equals the (first) bottom, so the layer can be dropped."""
        return False

    def channel_affine(self, node, in_shapes, options):
        """(scale, shift), float64 vectors over axis 1, where the layer is y = x * scale + shift
        per channel with fixed values (frozen BN statistics, a per-channel Scale); else None."""
        return None

    def fold_affine(self, node, in_shapes, scale, shift):
        """(param, blobs) of this layer with a following per-output-channel affine folded into
        its weights and bias (float64, then float32); None where its outputs' axis 1 is not the
        axis its weights index. `param` is a new LayerParameter; the parsed one is not touched."""
        return None


def spatial(param, single, h_name, w_name, repeated=None, default=None):
    """Caffe's (h, w) from a repeated field (1 or 2 values) or the *_h/*_w pair."""
    if h_name and (param.HasField(h_name) or param.HasField(w_name)):
        return int(getattr(param, h_name)), int(getattr(param, w_name))
    values = list(getattr(param, single)) if repeated else ([getattr(param, single)] if param.HasField(single) else [])
    if not values:
        return default
    if len(values) == 1:
        return int(values[0]), int(values[0])
    return int(values[0]), int(values[1])


def normal_blobs(rng, shapes, *scales):
    """Seeded float32 blobs: blob i drawn from N(0, scales[i]^2), in the order of `shapes`
    (a layer with an optional bias passes both scales and gets as many blobs as shapes)."""
    return [(rng.standard_normal(s) * scale).astype(np.float32) for s, scale in zip(shapes, scales)]


def copy_param(param):
    """A new LayerParameter equal to `param` (passes change copies, never the parsed net)."""
    out = type(param)()
    out.CopyFrom(param)
    return out


def canonical_axis(axis, ndim):
    return axis + ndim if axis < 0 else axis


# -- validation helpers shared by the handlers' check() and shape rules ----------------------
#: Caffe's Blob::Reshape limit: a blob holds at most INT_MAX values
INT32_MAX = 2**31 - 1
#: Caffe's kMaxBlobAxes
MAX_AXES = 32


def zero_fields(param, prefix, names):
    """Problems for every field in `names` set to 0 (a repeated field: any value 0)."""
    out = []
    for name in names:
        value = getattr(param, name)
        zero = (param.HasField(name) and value == 0) if isinstance(value, (int, float)) else any(v == 0 for v in value)
        if zero:
            out.append(f"{prefix}.{name} is 0; it must be at least 1")
    return out


def int_fields(param, prefix, names):
    """Problems for fields (uint32 in caffe.proto) beyond INT_MAX: Caffe reads them into an int,
    where they turn negative."""
    out = []
    for name in names:
        value = getattr(param, name)
        values = [value] if isinstance(value, int) else list(value)
        big = [v for v in values if v > INT32_MAX]
        if big:
            out.append(f"{prefix}.{name} {big[0]} exceeds Caffe's int range ({INT32_MAX})")
    return out


def pair_fields(param, prefix, single, h_name, w_name, repeated=False):
    """Caffe's rule for a (h, w) pair: the single field OR both *_h and *_w, never a mix."""
    has_h, has_w = param.HasField(h_name), param.HasField(w_name)
    has_single = bool(len(getattr(param, single))) if repeated else param.HasField(single)
    if (has_h or has_w) and has_single:
        return [f"{prefix}: give {single} or {h_name}/{w_name}, not both"]
    if has_h != has_w:
        given, missing = (h_name, w_name) if has_h else (w_name, h_name)
        return [f"{prefix}.{given} is given without {missing}: give both"]
    return []


def need_rank(shape, lo, hi=None, what="input"):
    """ValueError unless `shape` has lo..hi axes (hi None: exactly lo; -1: any from lo)."""
    hi = lo if hi is None else hi
    n = len(shape)
    if n < lo or (hi >= 0 and n > hi):
        article = "an" if what[:1] in "aeiou" else "a"
        want = (f"a {lo}-D {what}" if hi == lo else f"{article} {what} with at least {lo} axes" if hi < 0
                else f"a {lo}-D to {hi}-D {what}")
        raise ValueError(f"expects {want}, got {n}-D {list(shape)}")


def need_axis(axis, ndim, what="axis"):
    """The canonical index of `axis` in an ndim-D blob (Caffe's CanonicalAxisIndex), or ValueError."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"{what} {axis} is out of range for a {ndim}-D input")
    return axis % ndim


def shape_problem(shape):
    """Why a blob of `shape` cannot exist (no axes, too many, a dim below 1, more than
    INT_MAX values as Caffe allows), or None. Pure integer arithmetic: nothing overflows."""
    dims = [int(d) for d in shape]
    if not dims:
        return "a 0-D blob (MXNet needs at least one axis)"
    if len(dims) > MAX_AXES:
        return f"{len(dims)} axes (Caffe allows at most {MAX_AXES})"
    bad = [d for d in dims if d < 1]
    if bad:
        return f"dimension {bad[0]} (every dimension must be at least 1)"
    count = 1
    for d in dims:
        count *= d
        if count > INT32_MAX:
            return f"more than {INT32_MAX} values (Caffe's limit for one blob)"
    return None
