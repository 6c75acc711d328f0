"""MXNet emission: symbol, arg/aux params and the name map, from a shaped, weighted graph."""
import numpy as np

from .errors import ModelError
from .layers import handler_for
from .names import NameAllocator


def _mx():
    try:
        import mxnet as mx
    except ImportError:  # pragma: no cover - depends on the install
        raise ModelError("MXNet is not installed: pip install 'caffe2mx[cpu]' (or [gpu])") from None
    return mx


class Emitter:
    """What a handler's emit() sees: symbols, shapes, blobs, and where to put parameters."""

    def __init__(self, graph, shapes, options=None):
        self.graph = graph
        self.shapes = shapes
        self.options = dict(options or {})
        mxnet = _mx()
        self.mx = mxnet.sym
        self.arg_params, self.aux_params = {}, {}
        self.adjustments = []
        self._names = NameAllocator()
        self._node_names = {}
        self._params_of = {}
        self._current = None

    def name(self, node):
        if node.name not in self._node_names:
            self._node_names[node.name] = self._names(node.name)
        return self._node_names[node.name]

    def blobs(self, node):
        return node.blobs

    def in_shapes(self, node):
        return [self.shapes[b] for b in node.bottoms]

    def out_shapes(self, node):
        return [self.shapes[t] for t in node.tops]

    def _record(self, kind, name, array):
        array = np.ascontiguousarray(array, dtype=np.float32)
        if not np.all(np.isfinite(array)) and kind != "const":
            bad = int((~np.isfinite(array)).sum())
            self.adjust(self._current, f"parameter {name} holds {bad} non-finite value(s)")
        (self.aux_params if kind == "aux" else self.arg_params)[name] = array
        self._params_of.setdefault(self._current.name, []).append(f"{'aux' if kind == 'aux' else 'arg'}:{name}")

    def arg(self, name, array):
        self._record("arg", name, array)

    def aux(self, name, array):
        self._record("aux", name, array)

    def param_var(self, name, array):
        """A learnable parameter passed explicitly to an op (shape recorded on the variable)."""
        self.arg(name, array)
        return self.mx.Variable(name, shape=tuple(np.shape(array)))

    def const(self, name, array):
        """A fixed tensor (e.g. a pooling divisor map): stored as a param, gradient blocked."""
        name = self._names(name)
        self._record("const", name, array)
        return self.mx.BlockGrad(self.mx.Variable(name, shape=tuple(np.shape(array))), name=f"{name}_fixed")

    def adjust(self, node, message):
        self.adjustments.append({"layer": node.name, "type": node.type, "message": message})

    def run(self, teacher_forced=False):
        """Emit the net. With teacher_forced, every layer reads fresh variables (named in
        name_map["forced_inputs"]) instead of its producers' outputs, so one forward pass
        measures each layer on given bottoms: per-layer parity without inherited error."""
        mx = self.mx
        inputs = {}
        sym_of = {}
        forced = {}
        for blob_id in self.graph.inputs:
            var_name = self._names(blob_id)
            inputs[blob_id] = var_name
            sym_of[blob_id] = mx.Variable(var_name, shape=self.shapes[blob_id])
        layers = {}
        for node in self.graph.nodes:
            self._current = node
            h = handler_for(node.type)
            if teacher_forced:
                for b in node.bottoms:
                    if b not in forced and b not in inputs:
                        forced[b] = self._names(f"forced__{b}")
                ins = [sym_of[b] if b in inputs else mx.Variable(forced[b], shape=self.shapes[b]) for b in node.bottoms]
            else:
                ins = [sym_of[b] for b in node.bottoms]
            outs = h.emit(node, ins, self)
            if len(outs) != len(node.tops):
                raise AssertionError(f"handler {node.type} returned {len(outs)} outputs for {len(node.tops)} tops")
            for t, s in zip(node.tops, outs):
                sym_of[t] = s
            for m in node.fused or (node,):
                layers[m.name] = {"type": m.type, "line": m.line, "mxnet_op": self.name(node),
                                  "params": self._params_of.get(node.name, []),
                                  "tops": list(m.caffe_tops), "bottoms": list(m.caffe_bottoms)}
                if node.fused:
                    layers[m.name]["fused_with"] = [f.name for f in node.fused]
        outputs = self.graph.outputs()
        if teacher_forced:
            fed = set(inputs.values()) | set(forced.values())
            outputs = [t for n in self.graph.nodes for t in n.tops if sym_of[t].list_outputs()[0] not in fed]
            outputs = list(dict.fromkeys(outputs))
        symbol = mx.Group([sym_of[o] for o in outputs]) if len(outputs) > 1 else sym_of[outputs[0]]
        out_name = {b: s.list_outputs()[0] for b, s in sym_of.items()}
        name_map = {
            "format": "caffe2mx-namemap/1",
            "net": self.graph.name,
            "prototxt": self.graph.file,
            "inputs": {self.graph.caffe_blob(b): v for b, v in inputs.items()},
            "input_shapes": {self.graph.caffe_blob(b): list(self.shapes[b]) for b in inputs},
            "outputs": {self.graph.caffe_blob(o): out_name[o] for o in outputs},
            "blobs": {name: out_name[bid] for name, bid in self.graph.final_version.items() if bid in out_name},
            "versions": {bid: {"caffe_blob": self.graph.caffe_blob(bid), "mxnet": out_name[bid],
                               "shape": list(self.shapes[bid])} for bid in out_name},
            "layers": layers,
            "options": self.options,
            "adjustments": self.adjustments,
        }
        if teacher_forced:
            name_map["forced_inputs"] = forced
        return symbol, self.arg_params, self.aux_params, name_map
