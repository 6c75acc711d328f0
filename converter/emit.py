"""MXNet emission: symbol, arg/aux params and the name map, from a shaped, weighted graph.

Every MXNet node (operators, parameters, constants, input variables) gets its name from
one allocator and is recorded under the Caffe layer that owns it, so two Caffe names can
never produce one MXNet name, and every tool reads ownership from the name map instead
of guessing it from name prefixes.
"""
import types

import numpy as np

from .mxnet_import import import_mxnet
from .layers import handler_for
from .names import NameAllocator

NAME_MAP_FORMAT = "caffe2mx-namemap/2"


_mx = import_mxnet  # the name the converter's modules call it by


FLT_MIN = float(np.finfo(np.float32).tiny)


def _normal(value):
    """A float attribute below float32's smallest normal number, raised to it (sign kept)."""
    if isinstance(value, float) and 0 < abs(value) < FLT_MIN:
        return FLT_MIN if value > 0 else -FLT_MIN
    return value


class NormalFloats:
    """`mxnet.sym` (and its submodules) with every float keyword argument passed through
    `_normal`: MXNet parses float attributes with std::stof, which rejects subnormal values
    that Caffe accepts (an eps of 1e-45 is legal there); the change is below float32's
    resolution wherever such a value is added, and leaves products within 1e-38 of zero."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        value = getattr(self._module, name)
        if isinstance(value, types.ModuleType):
            return NormalFloats(value)
        if callable(value) and not isinstance(value, type):
            def call(*args, **kwargs):
                return value(*args, **{k: _normal(v) for k, v in kwargs.items()})
            return call
        return value


class Emitter:
    """What a handler's emit() sees: symbols, shapes, blobs, and where to put parameters."""

    def __init__(self, graph, shapes, options=None):
        self.graph = graph
        self.shapes = shapes
        self.options = dict(options or {})
        mxnet = _mx()
        self.mx = NormalFloats(mxnet.sym)
        self.arg_params, self.aux_params = {}, {}
        self.adjustments = []
        self.warnings = []
        self._layer_facts = {}
        self._names = NameAllocator()
        self._node_names = {}
        self._params_of = {}
        self.owner = {}  # MXNet node name -> Caffe layer name
        self._copy_source = {}  # identity node name -> the symbol it copies
        self._current = None

    # -- names -------------------------------------------------------------------------
    def _alloc(self, base):
        name = self._names(base)
        self.owner[name] = self._current.name
        return name

    def name(self, node):
        """The MXNet name of the node's main operator (the one whose output is the top)."""
        if node.name not in self._node_names:
            self._node_names[node.name] = self._alloc(node.name)
        return self._node_names[node.name]

    def sub(self, suffix):
        """A fresh name for a helper operator of the current layer (`<layer>_<suffix>`)."""
        return self._alloc(f"{self.name(self._current)}_{suffix}")

    # -- parameters and variables ------------------------------------------------------------
    def _record(self, kind, name, array):
        array = np.ascontiguousarray(array, dtype=np.float32)
        if not np.all(np.isfinite(array)) and kind != "const":
            bad = int((~np.isfinite(array)).sum())
            self.adjust(self._current, f"parameter {name} holds {bad} non-finite value(s)")
        (self.aux_params if kind == "aux" else self.arg_params)[name] = array
        self._params_of.setdefault(self._current.name, []).append(f"{'aux' if kind == 'aux' else 'arg'}:{name}")

    def param(self, suffix, array, aux=False):
        """A parameter of the current layer as a variable (`<layer>_<suffix>`), value recorded."""
        name = self.sub(suffix)
        self._record("aux" if aux else "arg", name, array)
        return self.mx.Variable(name, shape=tuple(np.shape(array)))

    def const(self, suffix, array):
        """A fixed tensor (e.g. a pooling divisor map): stored as a param, gradient blocked."""
        name = self.sub(suffix)
        self._record("const", name, array)
        return self.mx.BlockGrad(self.mx.Variable(name, shape=tuple(np.shape(array))), name=self.sub(f"{suffix}_fixed"))

    def identity(self, x, name):
        """An identity (`_copy`) node named `name`. A copy of a copy reads the first copy's
        input instead: MXNet 1.9.1 cannot bind `_copy(_copy(variable))` (two identity layers in
        a row on a net input, e.g. Dropout after Dropout), and the values are the same."""
        src = self._copy_source.get(x.name, x) if len(x.list_outputs()) == 1 else x
        out = self.mx.identity(src, name=name)
        self._copy_source[out.name] = src
        return out

    def variable(self, base, shape):
        """A fed variable (a net input) owned by the current layer."""
        name = self._alloc(base)
        return self.mx.Variable(name, shape=tuple(shape))

    # -- what handlers read ------------------------------------------------------------------
    def blobs(self, node):
        return node.blobs

    def in_shapes(self, node):
        return [self.shapes[b] for b in node.bottoms]

    def out_shapes(self, node):
        return [self.shapes[t] for t in node.tops]

    def adjust(self, node, message):
        self.adjustments.append({"layer": node.name, "type": node.type, "message": message})

    def warn(self, node, message):
        """Something about the layer's values the user should look at (nothing was changed)."""
        self.warnings.append({"layer": node.name, "type": node.type, "message": message})

    def record(self, node, key, value):
        """A fact about how the layer was converted, kept in its name-map entry (e.g. bn_blob3)."""
        self._layer_facts.setdefault(node.name, {})[key] = value

    # -- the net -------------------------------------------------------------------------------
    def _layer_entry(self, node, member):
        entry = {"type": member.type, "line": member.line, "mxnet_op": self.name(node),
                 "params": self._params_of.get(node.name, []),
                 "tops": list(member.caffe_tops), "bottoms": list(member.caffe_bottoms)}
        if node.fused:
            entry["fused_with"] = [f.name for f in node.fused]
        entry.update(self._layer_facts.get(member.name, {}))
        return entry

    def run(self):
        """Emit the net: (symbol, arg params, aux params, name map)."""
        mx = self.mx
        sym_of, inputs, layers = {}, {}, {}
        for node in self.graph.input_nodes():
            self._current = node
            outs = handler_for("Input").emit(node, [], self)
            for t, s in zip(node.tops, outs):
                sym_of[t] = s
                inputs[t] = s.name
            layers[node.name] = self._layer_entry(node, node)
        for node in self.graph.nodes:
            self._current = node
            h = handler_for(node.type)
            outs = h.emit(node, [sym_of[b] for b in node.bottoms], self)
            if len(outs) != len(node.tops):
                raise AssertionError(f"handler {node.type} returned {len(outs)} outputs for {len(node.tops)} tops")
            for t, s in zip(node.tops, outs):
                sym_of[t] = s
            for m in node.fused or (node,):
                layers[m.name] = self._layer_entry(node, m)
        outputs = self.graph.outputs()
        symbol = mx.Group([sym_of[o] for o in outputs]) if len(outputs) > 1 else sym_of[outputs[0]]
        # blobs whose value the symbol holds (inputs are fed, so always held): a top only a Silence
        # layer reads is computed by nothing (MXNet drops the unused output), so it is not claimed
        held = set(symbol.get_internals().list_outputs()) | set(inputs.values())
        out_name = {b: s.list_outputs()[0] for b, s in sym_of.items() if s.list_outputs()[0] in held}
        nodes_of = {}
        for mx_name, layer in self.owner.items():
            nodes_of.setdefault(layer, []).append(mx_name)
        for layer, entry in layers.items():
            entry["nodes"] = nodes_of.get(layer, [])
        name_map = {
            "format": NAME_MAP_FORMAT,
            "net": self.graph.name,
            "prototxt": self.graph.file,
            "inputs": {self.graph.caffe_blob(b): v for b, v in inputs.items()},
            "input_shapes": {self.graph.caffe_blob(b): list(self.shapes[b]) for b in inputs},
            "outputs": {self.graph.caffe_blob(o): out_name[o] for o in outputs},
            "blobs": {name: out_name[bid] for name, bid in self.graph.final_version.items() if bid in out_name},
            "versions": {bid: {"caffe_blob": self.graph.caffe_blob(bid), "mxnet": out_name[bid],
                               "shape": list(self.shapes[bid])} for bid in out_name},
            "layers": layers,
            "nodes": dict(self.owner),
            "options": self.options,
            "adjustments": self.adjustments,
            "warnings": self.warnings,
        }
        return symbol, self.arg_params, self.aux_params, name_map


def owner_of(name_map, mx_name):
    """The Caffe layer that owns an MXNet node (operator or variable), from the name map."""
    return (name_map.get("nodes") or {}).get(mx_name)
