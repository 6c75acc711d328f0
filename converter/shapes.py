"""Whole-net validation and shape inference with Caffe's rules (from the handlers).

Every blob shape is checked as it is inferred, before anything is allocated: at least one
axis and at most Caffe's 32, every dimension at least 1, at most INT_MAX values per blob
(Caffe's own limit), and the same count limit for each layer's weights. All arithmetic is
on Python integers, so no shape can overflow on the way.
"""
from .errors import ModelError, ModelErrors, clip, raise_all
from .layers import handler_for, is_internal, supported_types
from .layers.base import INT32_MAX, shape_problem
from .proto import caffe_pb


def _err(graph, node, msg):
    return ModelError(msg, file=graph.file, line=node.line, layer=node.name, layer_type=node.type)


def _count_range(lo, hi):
    return f"{lo}{'' if lo == hi else '+' if hi > 99 else f'-{hi}'}"


def node_problems(node, h):
    """Messages for a supported node's bottom/top counts and parameters (its handler's check)."""
    problems = []
    lo, hi = h.n_bottoms
    if not lo <= len(node.bottoms) <= hi:
        problems.append(f"takes {_count_range(lo, hi)} bottom(s), got {len(node.bottoms)}")
    lo, hi = h.n_tops
    if not lo <= len(node.tops) <= hi:
        problems.append(f"produces {lo}{'' if lo == hi else '+'} top(s), got {len(node.tops)}")
    try:
        return problems + list(h.check(node))
    except AttributeError as exc:  # a plug-in's handler reading its fork's field
        field = str(exc).strip("'\"")
        if field in caffe_pb.LayerParameter.DESCRIPTOR.fields_by_name or not field.endswith("_param"):
            raise
        return problems + [f"its handler reads {field}, which caffe2mx's schema does not have: "
                           f"give the fork's .proto with --proto"]


def check_supported(graph):
    """One error listing every unsupported layer and every unconvertible parameter."""
    unsupported, problems = [], []
    for node in graph.nodes:
        h = None if is_internal(node.type) else handler_for(node.type)
        problems += [ModelError(f"unknown field {u.describe()}: not in caffe2mx's schema, and it may change what "
                                f"the layer computes (a fork's parameters? give its .proto with --proto)",
                                file=graph.file, line=u.line, layer=node.name,
                                layer_type=node.type) for u in node.unknown_fields]
        problems += [_err(graph, node, f"sets {f}, a fork's field that caffe2mx does not convert for {node.type}")
                     for f in node.fork_fields if f not in getattr(h, "fork_fields", ())]
        if h is None:
            unsupported.append(_err(graph, node, "unsupported layer type" +
                                    (" (Python layers are never imported or run)" if node.type == "Python" else "")))
            continue
        problems += [_err(graph, node, m) for m in node_problems(node, h)]
    if unsupported:
        raise ModelErrors(f"{graph.file}: {len(unsupported)} unsupported layer(s):", unsupported + problems,
                          footer=_needed_types(unsupported) + "\nSupported layer types: " + ", ".join(supported_types()))
    raise_all(problems, f"{graph.file}: {{n}} problems with layer parameters:")
    if graph.nodes and not graph.outputs():
        raise ModelError("the net has no output: every blob its layers compute is read by a later layer (a Silence "
                         "reads the last ones), so there is nothing to convert", file=graph.file)


def _needed_types(unsupported):
    """Every unsupported type with the lines of all its layers: the problem list itself shows
    only the first MAX_LISTED, and the user needs the whole set to plan a plug-in."""
    lines = {}
    for e in unsupported:
        lines.setdefault(e.layer_type, []).append(str(e.line))
    return "The net needs: " + "; ".join(f"{clip(t, 80)} ({len(ls)} layer{'s' if len(ls) > 1 else ''}, line"
                                         f"{'s' if len(ls) > 1 else ''} {', '.join(ls)})" for t, ls in lines.items())


def _input_locations(graph):
    """blob -> the Input node that declares it (line None for `input:` fields)."""
    return {t: n for n in graph.input_nodes() for t in n.tops}


def infer_shapes(graph, input_shapes=None):
    """blob id -> shape for every blob version, following the net in order.

    Layers that check_supported would refuse are left unshaped (their rules may divide by
    the very parameter that is wrong), and so is everything downstream of a failure; every
    shape problem in the net is reported in one error.
    """
    declared = {k: tuple(v) for k, v in graph.inputs.items()}
    if input_shapes:
        declared.update({k: tuple(v) for k, v in input_shapes.items()})
    where = _input_locations(graph)
    shapes, errors = {}, []
    for blob, shape in declared.items():
        why = shape_problem(shape)
        if why is None:
            shapes[blob] = tuple(int(d) for d in shape)
            continue
        node = where.get(blob)
        msg = f"input '{blob}' has shape {list(shape)}: {why}"
        located = node is not None and node.line is not None  # not the synthetic layer of `input:` fields
        errors.append(_err(graph, node, msg) if located else ModelError(msg, file=graph.file))
    for node in graph.nodes:
        h = None if is_internal(node.type) else handler_for(node.type)
        if h is None or any(b not in shapes for b in node.bottoms) or node_problems(node, h):
            continue
        ins = [shapes[b] for b in node.bottoms]
        try:
            outs = h.output_shapes(node, ins)
            weights = h.blob_shapes(node, ins)
        except ValueError as exc:
            errors.append(_err(graph, node, f"{exc} (input shapes {', '.join(str(list(s)) for s in ins)})"))
            continue
        bad = []
        for t, s in zip(node.tops, outs):
            why = shape_problem(s)
            if why is not None:
                bad.append(f"top '{graph.caffe_blob(t)}' would have shape {list(s)}: {why}")
        for i, s in enumerate(weights):
            count = 1
            for d in s:
                count *= int(d)
            if count > INT32_MAX or any(int(d) < 1 for d in s):
                name = h.blob_names[i] if i < len(h.blob_names) else f"blob {i}"
                bad.append(f"its {name} blob would have shape {list(s)}: more than {INT32_MAX} values"
                           if count > INT32_MAX else f"its {name} blob would have shape {list(s)}")
        if bad:
            errors += [_err(graph, node, m) for m in bad]
            continue
        for t, s in zip(node.tops, outs):
            shapes[t] = tuple(int(d) for d in s)
    raise_all(errors, f"{graph.file}: shape inference failed in {{n}} places:")
    return shapes
