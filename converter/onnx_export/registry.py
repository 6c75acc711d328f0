"""Translator registry keyed by MXNet op name, and the builder a translator writes ONNX into."""
import ast
from dataclasses import dataclass, field

import numpy as np

_TRANSLATORS = {}


def translates(*ops):
    """Decorator: register `fn(b, node)` as the ONNX translation of each MXNet op in `ops`."""
    def deco(fn):
        for op in ops:
            if op in _TRANSLATORS:
                from ..layers.base import describe
                raise ValueError(f"MXNet op '{op}' has two ONNX translators: {describe(_TRANSLATORS[op])} and "
                                 f"{describe(fn)}")
        for op in ops:
            _TRANSLATORS[op] = fn
        return fn
    return deco


_LOADED = []


def _load_translators():
    """Import every `ops_*` module of this package (each registers its translators), so a new
    module of translators never touches another file."""
    import importlib
    import pkgutil
    if _LOADED:
        return
    _LOADED.append(True)
    package = __name__.rsplit(".", 1)[0]
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if info.name.startswith("ops_"):
            importlib.import_module(f"{package}.{info.name}")


def translator_for(op):
    _load_translators()
    return _TRANSLATORS.get(op)


def supported_ops():
    _load_translators()
    return sorted(_TRANSLATORS)


class Unsupported(Exception):
    """This node's op or attributes have no faithful ONNX form; the message says why."""


def attr_tuple(attrs, key, default=None):
    """MXNet tuple attribute '(3, 3)' / '[1,2]' / '3' -> tuple of ints (None kept)."""
    raw = attrs.get(key)
    if raw is None or raw in ("", "()", "[]"):
        return default
    value = ast.literal_eval(raw)
    if not isinstance(value, (tuple, list)):
        value = (value,)
    return tuple(None if v is None else int(v) for v in value)


def attr_bool(attrs, key, default=False):
    raw = attrs.get(key)
    if raw is None:
        return default
    return raw.strip().lower() in ("true", "1")


def attr_float(attrs, key, default=None):
    raw = attrs.get(key)
    return default if raw is None or raw == "None" else float(raw)


def attr_int(attrs, key, default=None):
    raw = attrs.get(key)
    return default if raw is None or raw == "None" else int(raw)


@dataclass
class MxNode:
    """One MXNet op as a translator sees it: ONNX names of its inputs and of its output."""

    name: str
    op: str
    attrs: dict
    inputs: list
    output: str
    in_shapes: list
    out_shape: tuple
    layer: str = None  # Caffe layer it came from, if known
    onnx_nodes: list = field(default_factory=list)


class Builder:
    """Collects ONNX nodes and initializers; names nodes `layer` or `layer:helper` after the Caffe layer."""

    def __init__(self, opset, params):
        from onnx import helper, numpy_helper
        self.helper, self.numpy_helper = helper, numpy_helper
        self.opset = opset
        self.params = params
        self.nodes, self.initializers = [], []
        self._init_names = set()
        self._value_names = set()
        self._node_names = set()
        self.current = None

    def reserve(self, name):
        self._value_names.add(name)

    def fresh(self, hint):
        name, k = hint, 1
        while name in self._value_names or name in self._init_names:
            k += 1
            name = f"{hint}_{k}"
        self._value_names.add(name)
        return name

    def _node_name(self, suffix):
        node = self.current
        base = node.layer or node.name
        name = base if suffix is None else f"{base}:{suffix}"
        k = 1
        while name in self._node_names:
            k += 1
            name = f"{base}:{suffix or node.op}_{k}"
        self._node_names.add(name)
        return name

    def initializer(self, name, array, dtype=np.float32):
        """Add a tensor under exactly `name` (a parameter): it must be new."""
        if name in self._init_names:
            return name
        arr = np.ascontiguousarray(np.asarray(array, dtype=dtype))
        self.initializers.append(self.numpy_helper.from_array(arr, name=name))
        self._init_names.add(name)
        self._value_names.add(name)
        return name

    def const(self, hint, array, dtype=np.float32):
        """A helper constant named after the current node."""
        return self.initializer(self.fresh(f"{self.current.name}/{hint}"), array, dtype)

    def ints(self, hint, values):
        return self.const(hint, np.asarray(values, np.int64), np.int64)

    def scalar(self, hint, value):
        return self.const(hint, np.asarray(value, np.float32))

    def param(self, name):
        """An MXNet parameter as an initializer (numpy float32)."""
        if name not in self.params:
            raise Unsupported(f"no value for parameter '{name}'")
        return self.initializer(name, self.params[name])

    def param_array(self, name):
        if name not in self.params:
            raise Unsupported(f"no value for parameter '{name}'")
        return np.asarray(self.params[name], np.float32)

    def add(self, op_type, inputs, output=None, suffix=None, **attrs):
        """Append one ONNX node; returns its output name (a fresh one unless `output` given)."""
        node = self.current
        out = output if output is not None else self.fresh(f"{node.name}/{suffix or op_type}")
        name = self._node_name(None if output == node.output and suffix is None else (suffix or op_type))
        onnx_node = self.helper.make_node(op_type, list(inputs), [out], name=name,
                                          **{k: v for k, v in attrs.items() if v is not None})
        where = f"Caffe layer '{node.layer}', " if node.layer else ""
        onnx_node.doc_string = f"{where}MXNet node '{node.name}' ({node.op})"
        self.nodes.append(onnx_node)
        node.onnx_nodes.append(name)
        return out

    def batch_and_channels(self, x):
        """Shape(x)[0:2] as a 1-D int64 tensor (for sizes with a dynamic batch)."""
        shape = self.add("Shape", [x], suffix="shape")
        return self.add("Slice", [shape, self.ints("zero", [0]), self.ints("two", [2])], suffix="batch_channels")
