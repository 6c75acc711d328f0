"""Intermediate graph built from a parsed NetParameter, which it never mutates.

Every blob version gets its own id: a layer writing blob `x` in place produces `x@1`,
the next `x@2`, and so on, so each id has exactly one producer. `caffe_blob(id)` gives
the Caffe name back, and `final_version[name]` the id Caffe holds after a forward pass.
"""
from dataclasses import dataclass, field, replace

from .errors import ModelError, ModelErrors
from .proto import caffe_pb

V1_TO_V2 = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL", "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution", "DATA": "Data",
    "DECONVOLUTION": "Deconvolution", "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output", "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData", "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct",
    "LRN": "LRN", "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence", "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH",
    "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}
_V1_PARAM_FIELDS = [f.name for f in caffe_pb.V1LayerParameter.DESCRIPTOR.fields if f.name.endswith("_param")]


@dataclass(frozen=True)
class Node:
    """One Caffe layer. `param` is its LayerParameter (V1 layers upgraded into a new message)."""

    name: str
    type: str
    bottoms: tuple
    tops: tuple
    param: object
    line: int = None
    index: int = 0
    blobs: tuple = ()
    fused: tuple = ()  # original nodes when a pass merged several layers into this one

    @property
    def caffe_bottoms(self):
        return tuple(self.param.bottom)

    @property
    def caffe_tops(self):
        return tuple(self.param.top)


@dataclass(frozen=True)
class Graph:
    name: str
    file: str
    inputs: dict  # blob id -> shape
    nodes: tuple
    caffe_names: dict = field(default_factory=dict)  # blob id -> Caffe blob name
    final_version: dict = field(default_factory=dict)  # Caffe blob name -> blob id
    input_layers: tuple = ()  # Input nodes (Caffe's `input` layer for `input:` fields), in net order

    def input_nodes(self):
        """The Input layers that declare the net's inputs (one synthetic `input` layer, as
        Caffe's upgrade names it, for inputs declared by `input:` fields)."""
        covered = {t for n in self.input_layers for t in n.tops}
        rest = tuple(b for b in self.inputs if b not in covered)
        if not rest:
            return self.input_layers
        names = {n.name for n in self.input_layers} | {n.name for n in self.nodes}
        name = "input"
        while name in names:
            name = "_" + name
        synthetic = Node(name=name, type="Input", bottoms=(), tops=rest, param=_input_param(name, rest))
        return (synthetic,) + tuple(self.input_layers)

    def caffe_blob(self, blob_id):
        return self.caffe_names.get(blob_id, blob_id)

    def consumers(self):
        out = {}
        for n in self.nodes:
            for b in n.bottoms:
                out.setdefault(b, []).append(n)
        return out

    def outputs(self):
        """Blob ids no layer reads: the net's outputs, in layer order."""
        used = {b for n in self.nodes for b in n.bottoms}
        return [t for n in self.nodes for t in n.tops if t not in used]

    def node(self, name):
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def with_nodes(self, nodes, **changes):
        return replace(self, nodes=tuple(nodes), **changes)


def _input_param(name, tops):
    return caffe_pb.LayerParameter(name=name, type="Input", top=list(tops))


def _rule_met(rule, phase):
    if rule.HasField("phase") and rule.phase != phase:
        return False
    if rule.HasField("min_level") and 0 < rule.min_level:
        return False
    if rule.HasField("max_level") and 0 > rule.max_level:
        return False
    return not rule.stage


def _included(layer, phase):
    """Caffe's NetStateRule semantics for a deploy (TEST, level 0, no stage) net."""
    if layer.include and layer.exclude:
        return None
    if layer.include:
        return any(_rule_met(r, phase) for r in layer.include)
    return not any(_rule_met(r, phase) for r in layer.exclude)


def _upgrade_v1(v1):
    """A new LayerParameter with a V1 layer's content; the parsed V1 message is left as it is."""
    layer = caffe_pb.LayerParameter(name=v1.name, bottom=v1.bottom, top=v1.top)
    type_name = caffe_pb.V1LayerParameter.LayerType.Name(v1.type)
    layer.type = V1_TO_V2.get(type_name, type_name)
    layer.include.extend(v1.include)
    layer.exclude.extend(v1.exclude)
    layer.blobs.extend(v1.blobs)
    for i, lr in enumerate(v1.blobs_lr):
        spec = layer.param.add(lr_mult=lr)
        if i < len(v1.weight_decay):
            spec.decay_mult = v1.weight_decay[i]
    for fname in _V1_PARAM_FIELDS:
        if v1.HasField(fname) and fname in caffe_pb.LayerParameter.DESCRIPTOR.fields_by_name:
            getattr(layer, fname).CopyFrom(getattr(v1, fname))
    return layer


def _shape_tuple(blob_shape):
    return tuple(int(d) for d in blob_shape.dim)


def _net_inputs(net, path):
    names = list(net.input)
    if not names:
        return []
    if net.input_shape:
        if len(net.input_shape) != len(names):
            raise ModelError(f"{len(names)} `input` names but {len(net.input_shape)} `input_shape` blocks",
                             file=path)
        return [(n, _shape_tuple(s)) for n, s in zip(names, net.input_shape)]
    dims = list(net.input_dim)
    if len(dims) != 4 * len(names):
        raise ModelError(f"{len(names)} `input` names need {4 * len(names)} `input_dim` lines, found {len(dims)}",
                         file=path)
    return [(n, tuple(dims[4 * i: 4 * i + 4])) for i, n in enumerate(names)]


def build_graph(parsed, phase=None):
    """ParsedNet -> Graph: phase filtering, V1 upgrade, inputs, in-place versioning, checks.

    Every structural problem in the net is collected and reported in one error.
    """
    net, path = parsed.net, parsed.path
    phase = caffe_pb.TEST if phase is None else phase
    if net.layer and net.layers:
        raise ModelError("the net mixes `layer {}` and legacy `layers {}` blocks", file=path)
    raw = [(l, line) for l, line in zip(net.layer, parsed.layer_lines)]
    raw += [(_upgrade_v1(l), line) for l, line in zip(net.layers, parsed.v1_layer_lines)]

    errors = []
    declared = _net_inputs(net, path)
    inputs = dict(declared)
    errors += _twice_declared(declared, path)
    layers = []
    for layer, line in raw:
        inc = _included(layer, phase)
        if inc is None:
            errors.append(ModelError("has both include and exclude rules", file=path, line=line,
                                     layer=layer.name, layer_type=layer.type))
        elif inc:
            layers.append((layer, line))

    counts = {}
    for layer, line in layers:
        counts[layer.name] = counts.get(layer.name, 0) + 1
    for name, c in counts.items():
        if c > 1:
            lines = [str(l) for lay, l in layers if lay.name == name]
            errors.append(ModelError(f"layer name used {c} times (lines {', '.join(lines)})", file=path,
                                     layer=name))

    # First writer of each Caffe blob, to tell a missing bottom from a cycle or bad order.
    first_writer = {}
    for i, (layer, line) in enumerate(layers):
        for t in layer.top:
            first_writer.setdefault(t, i)

    current = {n: n for n in inputs}
    caffe_names = {n: n for n in inputs}
    writer_of = {n: None for n in inputs}
    versions = {}
    taken = set(inputs)
    for layer, _ in layers:
        taken.update(layer.top)
    nodes, input_layers = [], []
    cycles = {}  # filled on the first out-of-order bottom: layer index -> strongly connected component
    for i, (layer, line) in enumerate(layers):
        err = lambda msg: errors.append(ModelError(msg, file=path, line=line, layer=layer.name,
                                                   layer_type=layer.type))
        if layer.type == "Input":
            shapes = [_shape_tuple(s) for s in layer.input_param.shape]
            if len(shapes) == 1 and len(layer.top) > 1:
                shapes *= len(layer.top)
            if len(shapes) != len(layer.top):
                err(f"{len(layer.top)} tops but {len(shapes)} input shapes")
                continue
            for t, s in zip(layer.top, shapes):
                if t in inputs:
                    first = f"by layer '{writer_of[t]}'" if writer_of.get(t) else "by an `input:` field"
                    err(f"input '{t}' is already declared {first}; an input is declared once")
                    continue
                inputs[t] = s
                current[t] = t
                caffe_names[t] = t
                writer_of[t] = layer.name
            input_layers.append(Node(name=layer.name, type="Input", bottoms=(), tops=tuple(layer.top), param=layer,
                                     line=line))
            continue
        bottoms = []
        for b in layer.bottom:
            if b in current:
                bottoms.append(current[b])
                continue
            later = first_writer.get(b)
            if later is None:
                err(f"bottom '{b}' is not produced by any layer or input")
            elif later == i:
                err(f"bottom '{b}' is written only by this layer itself (in place): nothing produces it first")
            elif _same_cycle(layers, later, i, cycles):
                err(f"bottom '{b}' comes from layer '{layers[later][0].name}' (line {layers[later][1]}), "
                    f"which itself depends on this layer: the net has a cycle")
            else:
                err(f"bottom '{b}' is produced only later, by layer '{layers[later][0].name}' "
                    f"(line {layers[later][1]})")
            bottoms.append(b)
        tops = []
        for j, t in enumerate(layer.top):
            if t in current:
                in_place = j < len(layer.bottom) and layer.bottom[j] == t
                if not in_place:
                    first = writer_of.get(t)
                    err(f"top '{t}' is already written by {'the net input' if first is None else repr(first)}; "
                        f"only an in-place layer (top == bottom at the same position) may rewrite a blob")
                k = versions.get(t, 0) + 1
                versions[t] = k
                vid = f"{t}@{k}"
                while vid in taken:
                    vid += "'"
                taken.add(vid)
            else:
                vid = t
            current[t] = vid
            caffe_names[vid] = t
            writer_of[t] = layer.name
            tops.append(vid)
        nodes.append(Node(name=layer.name, type=layer.type, bottoms=tuple(bottoms), tops=tuple(tops),
                          param=layer, line=line, index=len(nodes)))
    if not inputs:
        errors.append(ModelError("the net declares no input (`input:` fields or an `Input` layer)", file=path))
    elif not nodes and not errors:
        errors.append(ModelError("the net has inputs but no layers: there is nothing to convert", file=path))
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise ModelErrors(f"{path}: {len(errors)} problems in the net:", errors)
    return Graph(name=net.name, file=path, inputs=inputs, nodes=tuple(nodes), caffe_names=caffe_names,
                 final_version=dict(current), input_layers=tuple(input_layers))


def _twice_declared(declared, path):
    """An `input:` name given twice is an error (Caffe would silently keep the later shape)."""
    seen, errors = set(), []
    for name, _ in declared:
        if name in seen:
            errors.append(ModelError(f"input '{name}' is declared twice; an input is declared once", file=path))
        seen.add(name)
    return errors


def _same_cycle(layers, a, b, cycles):
    """Are layers a and b on one dependency cycle? Strongly connected components (Tarjan,
    iterative) of the whole net are computed once, on the first call, into `cycles`: linear in
    the number of layers and blobs, whatever the number of out-of-order bottoms."""
    if not cycles:
        cycles.update(_components(layers))
    return cycles[a] == cycles[b]


def _components(layers):
    """Layer index -> component id, for the graph with an edge from the layer that writes the
    version of a blob a layer reads (the latest writer before it, or for a bottom read before
    any writer, the first writer after it) to that layer: one edge per bottom."""
    first = {}
    for i, entry in enumerate(layers):
        for t in entry[0].top:
            first.setdefault(t, i)
    succ = [[] for _ in layers]
    latest = {}
    for i, entry in enumerate(layers):
        for b in entry[0].bottom:
            w = latest.get(b, first.get(b))
            if w is not None:
                succ[w].append(i)
        for t in entry[0].top:
            latest[t] = i
    index, low, comp = {}, {}, {}
    stack, on_stack, counter = [], set(), 0
    for root in range(len(layers)):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, k = work.pop()
            if k == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            if k < len(succ[v]):
                work.append((v, k + 1))
                w = succ[v][k]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp[w] = v
                    if w == v:
                        break
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return comp
