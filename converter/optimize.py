"""The inference-optimised MXNet model: the faithful graph through folding passes, then emitted.

`convert --optimize` writes it beside the faithful model as PREFIX-opt-symbol.json,
PREFIX-opt-0000.params and PREFIX-opt-namemap.json. The passes (converter/passes.py) are pure
graph -> graph functions on the weighted IR, run in this order:

1. BatchNorm + Scale -> `_BatchNormScale` (as for the faithful model);
2. identities dropped (Split, Dropout, one-bottom Concat, same-size Interp, identity Power);
3. every fixed per-channel affine (frozen fork BN, BatchNorm(+Scale) with global statistics,
   per-channel Scale/Bias) directly after a Convolution, Deconvolution or InnerProduct that
   nothing else reads is folded into its weights and bias (float64, then float32);
4. the affines that remain become one `_ChannelAffine` node each (a depthwise 1x1
   convolution on 4-D blobs);
5. emission with 2-input Eltwise SUM as `elemwise_add`, which oneDNN can fuse.

At bind time MXNet's oneDNN (MKLDNN) subgraph backend then fuses Convolution + bias + ReLU
(+ the residual sum), the depthwise affines included: `bind_inference` binds that way explicitly, and plain
`Module`/`simple_bind` do so by default in MXNet 1.9.1 CPU builds (unless
MXNET_SUBGRAPH_BACKEND=NONE). Reading internal blobs (verify) binds with the backend off.

The name map stays the one map of the faithful model's format, with these additions:
`layers[L]["folded_into"]` for a Caffe layer that no longer has a node of its own (its
`nodes` are empty), `layers[L]["emitted_as"]` where a layer is emitted as an internal type,
and `optimized`: the list of foldings, `folded_blobs` (blob versions that no longer exist:
they are absent from `blobs`/`versions`, and verify compares what survives) and `aliases`
(versions of dropped identities, mapped to the MXNet output that holds their value).
"""
from dataclasses import dataclass

import numpy as np

from .emit import Emitter, _mx
from .errors import UsageError
from .layers.norm import BN_BLOB3_MODES
from .model_files import Conversion
from .passes import affine_to_channel_affine, fold_affine_into_producers, fuse_batchnorm_scale, remove_identities

OPT_SUFFIX = "-opt"
FORMAT = "caffe2mx-optimized/1"


@dataclass(frozen=True)
class OptimizedGraph:
    graph: object
    foldings: tuple
    aliases: dict


def optimize_graph(graph, shapes, options):
    """The weighted graph through every optimisation pass; options as the emitter's (bn_blob3)."""
    graph = fuse_batchnorm_scale(graph)
    graph, removed, aliases = remove_identities(graph, shapes)
    graph, folded = fold_affine_into_producers(graph, shapes, options)
    graph, affines = affine_to_channel_affine(graph, shapes, options)
    return OptimizedGraph(graph=graph, foldings=tuple(removed + folded + affines), aliases=aliases)


def optimized_prefix(prefix):
    """Where `convert --optimize` writes the optimised model: PREFIX-opt."""
    return f"{prefix}{OPT_SUFFIX}"


def convert_optimized(net, *, bn_blob3="inv_std", progress=None):
    """Emit a LoadedNet (weights bound) as the inference-optimised MXNet model (a Conversion)."""
    if bn_blob3 not in BN_BLOB3_MODES:
        raise UsageError(f"bn_blob3 must be one of {', '.join(BN_BLOB3_MODES)}, not {bn_blob3!r}")
    say = progress or (lambda msg: None)
    options = {"bn_blob3": bn_blob3}
    opt = optimize_graph(net.graph, net.shapes, options)
    say(f"emitting {len(opt.graph.nodes)} optimised layers ({len(net.graph.nodes)} in the net)")
    em = Emitter(opt.graph, net.shapes, options={**options, "optimized": True})
    symbol, args, auxs, name_map = em.run()
    name_map["caffemodel"] = net.caffemodel
    _describe(name_map, net.graph, opt)
    nd = _mx().nd
    return Conversion(symbol=symbol, arg_params={k: nd.array(v, dtype="float32") for k, v in args.items()},
                      aux_params={k: nd.array(v, dtype="float32") for k, v in auxs.items()},
                      name_map=name_map, net=net)


def _describe(name_map, graph, opt):
    """Name-map entries for every folded layer and blob, so the map locates every Caffe blob
    that survives and marks those that do not."""
    faithful = {n.name: n for n in graph.nodes}
    layers, versions = name_map["layers"], name_map["versions"]
    folded_blobs = {}
    for f in opt.foldings:
        member = faithful[f.layer]
        if f.into == f.layer:
            layers[f.layer]["emitted_as"] = layers[f.layer]["type"]
            layers[f.layer]["type"] = member.type
            continue
        entry = {"type": member.type, "line": member.line, "mxnet_op": None, "params": [],
                 "tops": list(member.caffe_tops), "bottoms": list(member.caffe_bottoms), "nodes": [], "how": f.how}
        if f.how == "identity":
            entry["removed"] = "identity: its tops are its bottom"
        else:
            entry["folded_into"] = f.into
            entry["mxnet_op"] = layers[f.into]["mxnet_op"]
            for b in f.blobs:
                folded_blobs[b] = {"caffe_blob": graph.caffe_blob(b), "folded_into": f.into, "by": f.layer}
        layers[f.layer] = entry
    aliases = {}
    for removed, source in opt.aliases.items():
        while source in opt.aliases:
            source = opt.aliases[source]
        if source in versions:
            aliases[removed] = source
            versions[removed] = dict(versions[source], caffe_blob=graph.caffe_blob(removed), alias_of=source)
        else:
            folded_blobs[removed] = {"caffe_blob": graph.caffe_blob(removed), "alias_of": source}
    for caffe_name, vid in graph.final_version.items():
        if vid in versions and caffe_name not in name_map["blobs"]:
            name_map["blobs"][caffe_name] = versions[vid]["mxnet"]
    name_map["optimized"] = {
        "format": FORMAT,
        "bind": "MXNet oneDNN (MKLDNN) subgraph backend: Convolution + bias + ReLU (+ sum) fused at bind time",
        "foldings": [{"layer": f.layer, "type": f.type, "into": f.into, "how": f.how} for f in opt.foldings],
        "folded_blobs": folded_blobs,
        "aliases": aliases,
    }


def bind_inference(conv, batch_size=None, ctx=None, backend="MKLDNN"):
    """An MXNet executor for the model's first input at `batch_size` (default: the net's),
    with the subgraph `backend` applied explicitly (None: the symbol as it is). An int8
    model (name map `quantized`) is bound as saved. The executor reads the conversion's own
    parameter arrays (no copy), so several batch sizes cost one set of weights; feed it
    through `exe.arg_dict[input variable]`."""
    mx = _mx()
    ctx = ctx or mx.cpu()
    used = conv.input_names()
    in_blob, in_var = next((b, v) for b, v in conv.name_map["inputs"].items() if v in used)
    shape = list(conv.name_map["input_shapes"][in_blob])
    if batch_size is not None:
        shape[0] = batch_size
    quantized = "quantized" in conv.name_map
    symbol = conv.symbol.get_backend_symbol(backend) if backend and not quantized else conv.symbol
    args = {}
    for name in symbol.list_arguments():
        if name == in_var:
            args[name] = mx.nd.zeros(tuple(shape), ctx=ctx, dtype=np.float32)
        elif name in conv.arg_params:
            args[name] = conv.arg_params[name]
        else:
            raise UsageError(f"the model has no value for its parameter '{name}'")
    auxs = {name: conv.aux_params[name] for name in symbol.list_auxiliary_states()}
    return symbol.bind(ctx, args=args, aux_states=auxs, grad_req="null")
