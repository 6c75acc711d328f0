"""Caffe type string -> NumPy forward function.

A second registration of a type is a bug (two oracles for one layer), so it raises.
"""
from caffe2mx.converter.errors import Caffe2MXError
from caffe2mx.converter.layers.base import describe

_HANDLERS = {}


class UnsupportedLayerType(Caffe2MXError, KeyError):
    """A layer type the NumPy reference cannot run; the message lists what it can."""

    def __init__(self, layer_types, where=()):
        self.layer_types = tuple(layer_types)
        self.where = tuple(where)
        super().__init__(str(self))

    def __str__(self):
        head = ", ".join(repr(t) for t in self.layer_types)
        lines = [f"the NumPy reference has no implementation for layer type(s) {head}"]
        lines += [f"  {w}" for w in self.where]
        lines.append("supported types: " + ", ".join(supported_types()))
        return "\n".join(lines)


def register(*layer_types):
    """Decorator: `@register("ReLU")` makes the function the forward of that Caffe type."""

    def wrap(fn):
        for t in layer_types:
            if t in _HANDLERS:
                raise ValueError(f"layer type {t!r} has two NumPy references: {describe(_HANDLERS[t])} and "
                                 f"{describe(fn)}")
        for t in layer_types:
            _HANDLERS[t] = fn
        return fn

    return wrap


def handler(layer_type):
    try:
        return _HANDLERS[layer_type]
    except KeyError:
        raise UnsupportedLayerType([layer_type]) from None


def supported_types():
    return sorted(_HANDLERS)


def family_of(layer_type):
    """The family module name (e.g. 'conv') a type's NumPy forward lives in."""
    fn = _HANDLERS.get(layer_type)
    return None if fn is None else fn.__module__.rsplit(".", 1)[-1]
