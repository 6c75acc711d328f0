"""Whole-net validation and shape inference with Caffe's rules (from the handlers)."""
from .errors import ModelError, ModelErrors
from .layers import handler_for, is_internal, supported_types
from .proto import caffe_pb


def _err(graph, node, msg):
    return ModelError(msg, file=graph.file, line=node.line, layer=node.name, layer_type=node.type)


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
        lo, hi = h.n_bottoms
        if not lo <= len(node.bottoms) <= hi:
            problems.append(_err(graph, node, f"takes {lo}{'' if lo == hi else '+' if hi > 99 else f'-{hi}'} "
                                              f"bottom(s), got {len(node.bottoms)}"))
        lo, hi = h.n_tops
        if not lo <= len(node.tops) <= hi:
            problems.append(_err(graph, node, f"produces {lo}{'' if lo == hi else '+'} top(s), got {len(node.tops)}"))
        try:
            problems += [_err(graph, node, m) for m in h.check(node)]
        except AttributeError as exc:  # a plug-in's handler reading its fork's field
            field = str(exc).strip("'\"")
            if field in caffe_pb.LayerParameter.DESCRIPTOR.fields_by_name or not field.endswith("_param"):
                raise
            problems.append(_err(graph, node, f"its handler reads {field}, which caffe2mx's schema does not have: "
                                              f"give the fork's .proto with --proto"))
    if unsupported:
        raise ModelErrors(f"{graph.file}: {len(unsupported)} unsupported layer(s):", unsupported + problems,
                          footer="Supported layer types: " + ", ".join(supported_types()))
    if problems:
        if len(problems) == 1:
            raise problems[0]
        raise ModelErrors(f"{graph.file}: {len(problems)} layers cannot be converted:", problems)


def infer_shapes(graph, input_shapes=None):
    """blob id -> shape for every blob version, following the net in order."""
    shapes = {k: tuple(v) for k, v in graph.inputs.items()}
    if input_shapes:
        shapes.update({k: tuple(v) for k, v in input_shapes.items()})
    errors = []
    for node in graph.nodes:
        h = handler_for(node.type)
        if any(b not in shapes for b in node.bottoms):
            continue
        ins = [shapes[b] for b in node.bottoms]
        try:
            outs = h.output_shapes(node, ins)
        except ValueError as exc:
            errors.append(_err(graph, node, f"{exc} (input shapes {', '.join(str(list(s)) for s in ins)})"))
            continue
        for t, s in zip(node.tops, outs):
            shapes[t] = tuple(int(d) for d in s)
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise ModelErrors(f"{graph.file}: shape inference failed in {len(errors)} layers:", errors)
    return shapes
