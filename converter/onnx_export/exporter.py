"""MXNet symbol + params + name map -> ONNX ModelProto, and the ONNX checker call."""
import json

import numpy as np

from ..emit import owner_of
from ..errors import ModelError, ModelErrors, UsageError
from .registry import Builder, MxNode, Unsupported, supported_ops, translator_for

DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 13, 21
BATCH_DIM = "batch"
METADATA_FORMAT = "caffe2mx-onnx/1"


def _onnx():
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a core dependency
        raise UsageError("the onnx package is not installed: pip install onnx") from None
    return onnx


def _numpy_params(params):
    out = {}
    for k, v in (params or {}).items():
        out[k] = v.asnumpy() if hasattr(v, "asnumpy") else np.asarray(v)
    return out


def _layer_index(name_map):
    """Caffe layer -> (member layers, their types, line); a fused pair lists both members."""
    layers = name_map.get("layers") or {}
    index = {}
    for layer, info in layers.items():
        group = info.get("fused_with") or [layer]
        index[layer] = (group, [layers[g]["type"] for g in group if g in layers], info.get("line"))
    return index


def symbol_to_onnx(symbol, arg_params, aux_params, name_map, *, opset=DEFAULT_OPSET, dynamic_batch=True):
    """Translate a converted net to an ONNX ModelProto (checked by the caller).

    Every MXNet output keeps its name as the ONNX value name, except the net's outputs,
    which take their Caffe blob names; the Caffe blob -> ONNX value map goes into the
    model's metadata_props (`caffe2mx.blobs`, `caffe2mx.inputs`, `caffe2mx.outputs`).
    """
    _onnx()
    from onnx import TensorProto, helper
    if not MIN_OPSET <= int(opset) <= MAX_OPSET:
        raise UsageError(f"opset {opset} is not supported: choose {MIN_OPSET}..{MAX_OPSET}")
    opset = int(opset)
    params = _numpy_params(arg_params)
    params.update(_numpy_params(aux_params))
    used = set(symbol.list_arguments())
    # Caffe inputs that only lend their shape (Interp/Crop second bottoms) are not in the symbol.
    inputs = {k: v for k, v in (name_map.get("inputs") or {}).items() if v in used}
    input_shapes = {inputs[k]: tuple(v) for k, v in (name_map.get("input_shapes") or {}).items() if k in inputs}
    if not inputs:
        raise UsageError("the name map lists no input the symbol reads")
    graph = json.loads(symbol.tojson())
    internals = symbol.get_internals()
    _, out_shapes, _ = internals.infer_shape(**input_shapes)
    shape_of = dict(zip(internals.list_outputs(), out_shapes))
    index = _layer_index(name_map)
    nodes = graph["nodes"]
    heads = graph["heads"]

    outputs_caffe = dict(name_map.get("outputs") or {})  # Caffe blob -> MXNet output
    mx_out_names = {}
    for i, n in enumerate(nodes):
        mx_out_names[i] = n["name"] if n["op"] == "null" else f"{n['name']}_output"
    rename = {}
    var_names = set(inputs.values())
    taken = set(var_names)  # an in-place layer on a net input gives an output of the input's Caffe name
    for blob, mx_name in outputs_caffe.items():
        if blob not in taken and blob not in params:
            rename[mx_name] = blob
            taken.add(blob)

    b = Builder(opset, params)
    value_of = {}
    for name in list(var_names) + list(rename.values()):
        b.reserve(name)
    for i, n in enumerate(nodes):
        if n["op"] == "null":
            value_of[i] = n["name"]
            b.reserve(n["name"])
        else:
            b.reserve(rename.get(mx_out_names[i], mx_out_names[i]))

    problems, translated = [], []
    for i, n in enumerate(nodes):
        if n["op"] == "null":
            if n["name"] not in var_names and n["name"] not in params:
                problems.append((None, n["name"], n["op"], f"variable '{n['name']}' is neither an input nor a parameter"))
            continue
        in_refs = n["inputs"]
        if any(ref[1] != 0 for ref in in_refs):
            problems.append((owner_of(name_map, n["name"]), n["name"], n["op"], "reads a secondary output of another op"))
            continue
        mx_name = mx_out_names[i]
        node = MxNode(name=n["name"], op=n["op"], attrs=dict(n.get("attrs") or n.get("param") or {}),
                      inputs=[value_of[ref[0]] for ref in in_refs],
                      output=rename.get(mx_name, mx_name),
                      in_shapes=[tuple(shape_of.get(mx_out_names[ref[0]], params.get(value_of[ref[0]],
                                                                                        np.empty(0)).shape))
                                 for ref in in_refs],
                      out_shape=tuple(shape_of.get(mx_name, ())), layer=None)
        owner = owner_of(name_map, n["name"])
        if owner is not None:
            node.layer = "+".join(index[owner][0])
        value_of[i] = node.output
        fn = translator_for(n["op"])
        if fn is None:
            problems.append((owner, n["name"], n["op"], f"MXNet op '{n['op']}' has no ONNX translation"))
            continue
        b.current = node
        translated.append(node)
        try:
            fn(b, node)
        except Unsupported as exc:
            problems.append((owner, n["name"], n["op"], str(exc)))
    if problems:
        raise _export_errors(problems, index, name_map)

    referenced = {i for n in b.nodes for i in n.input}
    for name in sorted(referenced & set(params)):
        b.initializer(name, params[name])

    def value_info(name, shape):
        dims = list(shape)
        if dynamic_batch and dims:
            dims[0] = BATCH_DIM
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)

    graph_inputs = [value_info(var, input_shapes[var]) for var in inputs.values()]
    graph_outputs = []
    head_names = [value_of[h[0]] for h in heads]
    for h, name in zip(heads, head_names):
        graph_outputs.append(value_info(name, shape_of.get(mx_out_names[h[0]], ())))
    onnx_graph = helper.make_graph(b.nodes, _graph_name(name_map), graph_inputs, graph_outputs,
                                   initializer=b.initializers)
    model = helper.make_model(onnx_graph, producer_name="caffe2mx", producer_version=_version(),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, _max_ir_version(opset))
    model.doc_string = f"Converted by caffe2mx from {name_map.get('prototxt') or 'an MXNet symbol'}"

    blob_values = {}
    for blob, mx_name in (name_map.get("blobs") or {}).items():
        blob_values[blob] = rename.get(mx_name, mx_name)
    layer_nodes = {}
    for node in translated:
        if node.layer is not None:
            for layer in index[owner_of(name_map, node.name)][0]:
                layer_nodes.setdefault(layer, []).extend(node.onnx_nodes)
    meta = {
        "caffe2mx.format": METADATA_FORMAT,
        "caffe2mx.net": name_map.get("net") or "",
        "caffe2mx.prototxt": name_map.get("prototxt") or "",
        "caffe2mx.caffemodel": name_map.get("caffemodel") or "",
        "caffe2mx.inputs": json.dumps(inputs),
        "caffe2mx.input_shapes": json.dumps(name_map.get("input_shapes") or {}),
        "caffe2mx.outputs": json.dumps({blob: rename.get(mx, mx) for blob, mx in outputs_caffe.items()}),
        "caffe2mx.blobs": json.dumps(blob_values),
        "caffe2mx.layers": json.dumps(layer_nodes),
        "caffe2mx.dynamic_batch": json.dumps(bool(dynamic_batch)),
    }
    if "seeded_weights" in name_map:
        meta["caffe2mx.seeded_weights"] = json.dumps(name_map["seeded_weights"])
    helper.set_model_props(model, meta)
    return model


def _graph_name(name_map):
    return name_map.get("net") or "caffe2mx"


def _version():
    from ..version import VERSION
    return VERSION


def _max_ir_version(opset):
    """The oldest IR version that carries `opset`, so older runtimes can load the file."""
    table = {13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10}
    return table.get(opset, 10)


def _export_errors(problems, index, name_map):
    file = name_map.get("prototxt")
    errors = []
    for owner, mx_name, op, msg in problems:
        if owner is not None:
            layers, types, line = index[owner]
            errors.append(ModelError(f"cannot be exported to ONNX: {msg} (MXNet node '{mx_name}', op {op})",
                                     file=file, line=line, layer="+".join(layers), layer_type="+".join(types)))
        else:
            errors.append(ModelError(f"cannot be exported to ONNX: {msg} (MXNet node '{mx_name}', op {op})",
                                     file=file))
    footer = "MXNet ops with an ONNX translation: " + ", ".join(supported_ops())
    if len(errors) == 1:
        errors[0].message += f"\n{footer}"
        return errors[0]
    return ModelErrors(f"{file or 'the net'}: {len(errors)} layer(s) cannot be exported to ONNX:", errors,
                       footer=footer)


def check(model):
    """onnx.checker with full_check (strict shape inference)."""
    onnx = _onnx()
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"the exported model fails the ONNX checker: {exc}") from None
