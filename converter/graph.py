"""Intermediate graph built from a parsed NetParameter, which it never mutates.

Every blob version gets its own id: a layer writing blob `x` in place produces `x@1`,
the next `x@2`, and so on, so each id has exactly one producer. `caffe_blob(id)` gives
the Caffe name back, and `final_version[name]` the id Caffe holds after a forward pass.

Old formats are upgraded first (converter/upgrade.py). The net's inputs are its `input`
fields (those without dims are ignored, as Caffe ignores them), its `Input` layers' tops
and its data layers' tops (converter/data_layers.py); `input_shapes` (--input-shape) sets
or replaces any of them.

What the schema does not know (prototxt.UnknownField) is sorted here:
* on a layer of the TEST-phase net, an unknown field or enum value may change what the
  layer computes: it goes on the node (`Node.unknown_fields`) and check_supported lists
  it with the unsupported types, so the net is refused with everything in one error;
* under `param {}`, `transform_param`, `loss_param` or a `*_filler` it only configures
  training, and on a data or Input layer it concerns the data source (whose shape is
  given with --input-shape if it changes): ignored, with a note in `Graph.notes`;
* at net level (e.g. a fork's memory options): ignored, with a note;
* on a layer outside the TEST phase: ignored, as the layer is.
"""
from dataclasses import dataclass, field, replace

from .data_layers import DATA_LAYER_TYPES, data_layer_tops, pattern
from .errors import ModelError, ModelErrors
from .input_shapes import check_names
from .proto import caffe_pb
from .upgrade import V1_TO_V2, upgrade_layers  # noqa: F401  (V1_TO_V2 is part of this module's API)

#: Fields that forks added to BVLC parameter messages and that change what a BVLC layer
#: computes, each with the value that means BVLC's own behaviour. A layer that sets one to
#: another value is refused unless its handler lists the field in its `fork_fields` (the
#: schema knows these fields, so without this a handler would silently ignore them).
FORK_EXTENSION_FIELDS = {"pooling_param.ceil_mode": True}

#: Unknown fields under these parts of a layer only configure training (learning rates,
#: initial values, augmentation, losses): ignored with a note, never a reason to refuse.
TRAINING_ONLY = ("param", "transform_param", "loss_param")


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
    unknown_fields: tuple = ()  # prototxt.UnknownField the schema does not know, that may change the layer
    fork_fields: tuple = ()  # FORK_EXTENSION_FIELDS the layer sets (its handler must accept them)

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
    input_layers: tuple = ()  # Input nodes (Input layers, data layers), in net order
    notes: tuple = ()  # located sentences on what the build changed or ignored (data layers, unknown fields)

    def input_nodes(self):
        """The Input layers that declare the net's inputs (data layers among them, named as in
        the net), and one synthetic `input` layer, as Caffe's upgrade names it, for inputs
        declared by `input:` fields."""
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


def _shape_tuple(blob_shape):
    return tuple(int(d) for d in blob_shape.dim)


def _net_inputs(net, path):
    """[(name, shape)] of the legacy `input` fields; shape None for names declared without dims.

    Caffe ignores `input` names that come with no input_dim/input_shape at all (an Input
    layer may then declare the blob, as in nets saved by newer Caffe).
    """
    names = list(net.input)
    if not names:
        return []
    if net.input_shape:
        if len(net.input_shape) != len(names):
            raise ModelError(f"{len(names)} `input` names but {len(net.input_shape)} `input_shape` blocks",
                             file=path)
        return [(n, _shape_tuple(s)) for n, s in zip(names, net.input_shape)]
    dims = list(net.input_dim)
    if not dims:
        return [(n, None) for n in names]
    if len(dims) != 4 * len(names):
        raise ModelError(f"{len(names)} `input` names need {4 * len(names)} `input_dim` lines, found {len(dims)}",
                         file=path)
    return [(n, tuple(dims[4 * i: 4 * i + 4])) for i, n in enumerate(names)]


def _raw_layers(parsed, errors, notes):
    """[(LayerParameter, line, unknown fields)] in net order: `layer {}` as parsed, `layers {}` upgraded."""
    net, path = parsed.net, parsed.path
    raw = [(l, line, parsed.unknown_in("layer", i)) for i, (l, line) in enumerate(zip(net.layer, parsed.layer_lines))]
    if not net.layers:
        return raw
    upgraded, problems = upgrade_layers(net.layers, net.input)
    lines = parsed.v1_layer_lines
    for source, msg in problems:
        block = net.layers[source]
        errors.append(ModelError(msg, file=path, line=lines[source], layer=block.layer.name or block.name,
                                 layer_type=block.layer.type or None))
    for u in upgraded:
        for msg in u.problems:
            notes.append(str(ModelError(msg, file=path, line=lines[u.source], layer=u.layer.name,
                                        layer_type=u.layer.type)))
        unknown = sum((parsed.unknown_in("layers", i) for i in (u.source,) + u.folded), ())
        raw.append((u.layer, lines[u.source], unknown))
    return raw


def _differs(message, dotted, bvlc_value):
    """Is the field at `dotted` set, to something other than `bvlc_value`?"""
    *parents, last = dotted.split(".")
    for part in parents:
        if not message.HasField(part):
            return False
        message = getattr(message, part)
    return message.HasField(last) and getattr(message, last) != bvlc_value


def _training_only(path):
    parts = path.split(".")
    return parts[0] in TRAINING_ONLY or any(p.endswith("_filler") for p in parts)


def build_graph(parsed, phase=None, input_shapes=None):
    """ParsedNet -> Graph: upgrade of old formats, phase filtering, inputs, in-place versioning, checks.

    `input_shapes` ({name: shape}, from --input-shape) sets or replaces the shape of any of
    the net's inputs: `input` fields, Input layers' tops and data layers' tops (data layers
    become inputs). Every structural problem in the net is collected and reported in one error.
    """
    net, path = parsed.net, parsed.path
    phase = caffe_pb.TEST if phase is None else phase
    given = {k: tuple(int(d) for d in v) for k, v in (input_shapes or {}).items()}
    if net.layer and net.layers:
        raise ModelError("the net mixes `layer {}` and legacy `layers {}` blocks", file=path)
    errors, notes = [], []
    raw = _raw_layers(parsed, errors, notes)
    for u in parsed.net_unknown_fields:
        notes.append(str(ModelError(f"ignored net-level field {u.describe()}, which caffe2mx's schema does not "
                                    f"know", file=path, line=u.line)))

    declared = _net_inputs(net, path)
    inputs = {n: given.get(n, s) for n, s in declared if s is not None or n in given}
    dimless = {n for n, s in declared if s is None and n not in given}
    with_dims = {n for n, s in declared if s is not None}
    errors += _twice_declared(declared, path)
    layers = []
    for layer, line, unknown in raw:
        inc = _included(layer, phase)
        if inc is None:
            errors.append(ModelError("has both include and exclude rules", file=path, line=line,
                                     layer=layer.name, layer_type=layer.type))
        elif inc:
            layers.append((layer, line, unknown))
    source_types = ("Input",) + DATA_LAYER_TYPES
    check_names(given, [n for n, _ in declared] + [t for l, _, _ in layers if l.type in source_types for t in l.top],
                path)

    counts = {}
    for layer, line, _ in layers:
        counts[layer.name] = counts.get(layer.name, 0) + 1
    for name, c in counts.items():
        if c > 1:
            lines = [str(l) for lay, l, _ in layers if lay.name == name]
            errors.append(ModelError(f"layer name used {c} times (lines {', '.join(lines)})", file=path,
                                     layer=name))

    # First writer of each Caffe blob, to tell a missing bottom from a cycle or bad order.
    first_writer = {}
    for i, (layer, _, _) in enumerate(layers):
        for t in layer.top:
            first_writer.setdefault(t, i)
    read = {b for layer, _, _ in layers for b in layer.bottom}

    current = {n: n for n in inputs}
    caffe_names = {n: n for n in inputs}
    writer_of = {n: None for n in inputs}
    versions = {}
    taken = set(inputs)
    for layer, _, _ in layers:
        taken.update(layer.top)
    nodes, input_layers = [], []
    cycles = {}  # filled on the first out-of-order bottom: layer index -> strongly connected component
    for i, (layer, line, unknown) in enumerate(layers):
        err = lambda msg: errors.append(ModelError(msg, file=path, line=line, layer=layer.name,  # noqa: E731
                                                   layer_type=layer.type))
        note = lambda msg: notes.append(str(ModelError(msg, file=path, line=line, layer=layer.name,  # noqa: E731
                                                       layer_type=layer.type)))
        if layer.type in source_types:
            for u in unknown:
                note(f"ignored unknown field {u.describe()} (line {u.line}); if it changes the shape of "
                     f"{', '.join(layer.top)}, give the shape with --input-shape")
            if layer.type == "Input":
                shapes = [_shape_tuple(s) for s in layer.input_param.shape]
                if len(shapes) == 1 and len(layer.top) > 1:
                    shapes *= len(layer.top)
                if len(shapes) != len(layer.top) and not all(t in given for t in layer.top):
                    err(f"{len(layer.top)} tops but {len(shapes)} input shapes")
                    continue
                tops = [(t, given.get(t, s)) for t, s in zip(layer.top, shapes + [None] * len(layer.top))]
            else:
                tops = _data_layer_inputs(layer, given, read, err, note)
            for t, s in tops:
                if t in with_dims or writer_of.get(t):  # `input: "x"` without dims may sit beside it, as in Caffe
                    first = f"by layer '{writer_of[t]}'" if writer_of.get(t) else "by an `input:` field"
                    err(f"input '{t}' is already declared {first}; an input is declared once")
                    continue
                with_dims.add(t)
                inputs[t] = s
                current[t] = t
                caffe_names[t] = t
                writer_of[t] = layer.name
            if tops:  # a data layer too: an Input node named after it, with the tops that stay
                input_layers.append(Node(name=layer.name, type="Input", bottoms=(), tops=tuple(t for t, _ in tops),
                                         param=layer, line=line))
            continue
        bottoms = []
        for b in layer.bottom:
            if b in current:
                bottoms.append(current[b])
                continue
            later = first_writer.get(b)
            if later is None and b in dimless:
                err(f"bottom '{b}' is a net input declared without dims (`input: \"{b}\"` with no input_dim or "
                    f"input_shape, which Caffe ignores) and no Input layer gives its shape: give it with "
                    f"--input-shape {b}=N,C,H,W")
            elif later is None:
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
        problems = []
        for u in unknown:
            if _training_only(u.path):
                note(f"ignored unknown field {u.describe()} (line {u.line}): it only configures training")
            else:
                problems.append(u)
        fork = tuple(f for f, bvlc in FORK_EXTENSION_FIELDS.items() if _differs(layer, f, bvlc))
        nodes.append(Node(name=layer.name, type=layer.type, bottoms=tuple(bottoms), tops=tuple(tops),
                          param=layer, line=line, index=len(nodes), unknown_fields=tuple(problems),
                          fork_fields=fork))
    if not inputs and not dimless:
        errors.append(ModelError("the net declares no input (`input:` fields, an `Input` layer or a data layer)",
                                 file=path))
    elif not nodes and not errors:
        errors.append(ModelError("the net has inputs but no layers: there is nothing to convert", file=path))
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise ModelErrors(f"{path}: {len(errors)} problems in the net:", errors)
    return Graph(name=net.name, file=path, inputs=inputs, nodes=tuple(nodes), caffe_names=caffe_names,
                 final_version=dict(current), notes=tuple(notes), input_layers=tuple(input_layers))


def _data_layer_inputs(layer, given, read, err, note):
    """[(top, shape)] a data layer contributes as net inputs; unknown shapes are errors asking for them."""
    out, made = [], []
    for top in data_layer_tops(layer):
        if top.top in given:
            out.append((top.top, given[top.top]))
        elif top.top not in read:
            note(f"top '{top.top}' is read by no layer: dropped")
            continue
        elif top.known:
            out.append((top.top, top.shape))
        else:
            err(f"the shape of top '{top.top}' cannot be known from the net ({top.why}): give it with "
                f"--input-shape {top.top}={pattern(top.shape)}")
            out.append((top.top, None))  # still the blob's source, so that its readers raise nothing more
            continue
        made.append(f"'{top.top}' {list(out[-1][1])}")
    if made:
        note(f"becomes the net input{'s' if len(made) > 1 else ''} {', '.join(made)}; the caller "
             f"feeds what it would produce, after its preprocessing (transform_param: mean, scale, crop)")
    return out


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
