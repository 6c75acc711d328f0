"""Layer handler base class and registry: one handler per Caffe type string."""
import numpy as np

_HANDLERS = {}


def register(cls):
    """Class decorator: register a handler under each type string in `cls.types`."""
    for t in cls.types:
        if t in _HANDLERS:
            raise ValueError(f"layer type '{t}' registered twice")
        _HANDLERS[t] = cls()
    return cls


def handler_for(type_):
    return _HANDLERS.get(type_)


def supported_types():
    return sorted(t for t in _HANDLERS if not t.startswith("_"))


class LayerHandler:
    """Shape rule, blob shapes, MXNet emission, weight init and cost of one Caffe layer type.

    `in_shapes`/`out_shapes` are tuples of ints (batch included). Emission receives MXNet
    symbols for the node's bottoms and returns one symbol per top.
    """

    types = ()
    #: names of the node's blobs, in Caffe order (used in the name map and errors)
    blob_names = ()
    n_bottoms = (1, 1)  # inclusive range
    n_tops = (1, 1)

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

    def macs(self, node, in_shapes, out_shapes):
        return 0


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


def canonical_axis(axis, ndim):
    return axis + ndim if axis < 0 else axis
