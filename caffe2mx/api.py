"""Python API mirroring the CLI: convert, optimize, load, verify, export_onnx, inspect.

Each function takes what the matching command takes; a prototxt may also be given as a
`Net` already read by `read_net`, so a caller parses a net once for several steps.
"""
from .converter import budget
from .converter.errors import ModelError
from .converter.caffemodel import read_caffemodel
from .converter.errors import UsageError
from .converter.model_files import Conversion, check_output_prefix, load, save
from .converter.pipeline import LoadedNet, Net, bind, convert_net, load_net, read_net  # noqa: F401 (bind: part of the API module)


def _net(prototxt, input_shapes=None, progress=None):
    return prototxt if isinstance(prototxt, Net) else read_net(prototxt, input_shapes, progress)


def convert(prototxt, caffemodel=None, *, output_prefix=None, bn_blob3="inv_std", seed=None, input_shapes=None,
            progress=None, force=False, keep_net=True):
    """Convert a Caffe net; returns a Conversion with .symbol, .arg_params, .aux_params, .name_map.

    Without a caffemodel the net gets seeded weights (`caffe2mx.seeding`, seed 0 unless
    given) and `name_map["seeded_weights"]` says so; a LoadedNet (`bind(net, weights)`) brings
    its own weights. With `output_prefix` the three files PREFIX-symbol.json,
    PREFIX-0000.params and PREFIX-namemap.json are written too (existing ones are replaced
    only with `force`). A net whose conversion would need more memory than the budget
    (converter.budget) is refused before anything is allocated. With `keep_net` False the
    weighted Caffe graph is not kept (`.net` is None), and the weights are in memory once
    instead of twice.
    """
    if isinstance(prototxt, LoadedNet):  # weights already bound: the same output rules as below
        inputs = (prototxt.graph.file, prototxt.caffemodel)
        if output_prefix is not None:
            check_output_prefix(output_prefix, force=force, inputs=inputs)
        conv = convert_net(prototxt, bn_blob3=bn_blob3 or "inv_std", progress=progress)
        if output_prefix is not None:
            conv.files = save(conv, output_prefix, force=force, inputs=inputs)
        return conv
    net = _net(prototxt, input_shapes, progress)
    budget.check(net, "convert", caffemodel=caffemodel)
    if output_prefix is not None:
        check_output_prefix(output_prefix, force=force, inputs=(net.file, caffemodel))
    if caffemodel is None:
        from .seeding import seeded_weights
        weights = seeded_weights(net, seed=0 if seed is None else seed)
    else:
        (progress or (lambda m: None))(f"reading {caffemodel}")
        weights = read_caffemodel(caffemodel, progress=progress, layers={n.name for n in net.graph.nodes})
    conv = convert_net(net, weights=weights, caffemodel=caffemodel, bn_blob3=bn_blob3 or "inv_std",
                       progress=progress, keep_net=keep_net)
    if caffemodel is None:
        conv.name_map["caffemodel"] = None
        conv.name_map["seeded_weights"] = 0 if seed is None else seed
    if output_prefix is not None:
        conv.files = save(conv, output_prefix, force=force, inputs=(net.file, caffemodel))
    return conv


def optimize(source, caffemodel=None, *, output_prefix=None, bn_blob3="inv_std", seed=None, input_shapes=None,
             progress=None, force=False):
    """The inference-optimised MXNet model of a net (BN folded into convolutions, per-channel
    affines, identities dropped; see `caffe2mx.converter.optimize`), as a Conversion.

    `source` is a prototxt, a Net, or a Conversion made by `convert` in this process (its
    weights and BN reading are reused). With `output_prefix` the three files are written
    there (`caffe2mx convert --optimize -o P` writes them as P-opt-*; existing ones are replaced
    only with `force`). Bind it with
    `caffe2mx.converter.optimize.bind_inference` or MXNet's MKLDNN subgraph backend on.
    """
    from .converter.optimize import convert_optimized
    if isinstance(source, Conversion):
        if source.net is None:
            raise UsageError("optimize a loaded model from its prototxt (and caffemodel): the weighted net is "
                             "needed, and a loaded PREFIX has only the MXNet files")
        faithful = source
        bn_blob3 = (source.name_map.get("options") or {}).get("bn_blob3", bn_blob3)
    else:
        faithful = convert(source, caffemodel, bn_blob3=bn_blob3, seed=seed, input_shapes=input_shapes,
                           progress=progress)
    conv = convert_optimized(faithful.net, bn_blob3=bn_blob3 or "inv_std", progress=progress)
    for key in ("caffemodel", "seeded_weights"):
        if key in faithful.name_map:
            conv.name_map[key] = faithful.name_map[key]
    if output_prefix is not None:
        conv.files = save(conv, output_prefix, force=force, inputs=(faithful.name_map.get("prototxt"), caffemodel))
    return conv


def verify(prototxt=None, caffemodel=None, **options):
    """Layer-by-layer parity of a conversion against a reference; see `caffe2mx verify --help`.

    Returns a VerifyRun whose `.outcome.passed` is the verdict.
    """
    from .verification import verify as run
    return run(prototxt, caffemodel, **options)


def export_onnx(source, caffemodel=None, output=None, *, opset=None, dynamic_batch=True, simplify=False,
                bn_blob3="inv_std", seed=None, input_shapes=None, progress=None, force=False):
    """ONNX ModelProto of a net (prototxt path, Net, LoadedNet, Conversion, or converted-model PREFIX);
    also written to `output` when given (an existing file is replaced only with `force`)."""
    from .converter import onnx_export
    if isinstance(source, Conversion):
        conv = source
        budget.check_bytes(_params_estimate(conv), "ONNX export of this model")
    elif isinstance(source, LoadedNet):  # weights already bound (and so already in memory)
        conv = convert(source, bn_blob3=bn_blob3, progress=progress)
    elif isinstance(source, Net) or not _is_model_prefix(source):
        net = _net(source, input_shapes, progress)
        budget.check(net, "export-onnx", caffemodel=caffemodel)
        conv = convert(net, caffemodel, bn_blob3=bn_blob3, seed=seed, progress=progress)
    else:
        est = budget.Estimate()
        est.add("weights", 4 * _size(f"{source}-0000.params"))
        budget.check_bytes(est, "ONNX export of this model", file=f"{source}-0000.params")
        conv = load(source)
    if output is not None:
        inputs = [conv.name_map.get("prototxt"), conv.name_map.get("caffemodel"), caffemodel]
        inputs += list((conv.files or {}).values())
        onnx_export.check_output(output, force=force, inputs=inputs)
    from mxnet.base import MXNetError
    try:
        return onnx_export.export_conversion(conv, output, opset=opset or onnx_export.DEFAULT_OPSET,
                                             dynamic_batch=dynamic_batch, simplify=simplify, progress=progress,
                                             force=force)
    except (ValueError, SyntaxError, KeyError, TypeError, IndexError, MXNetError) as exc:
        if not conv.files:
            raise  # converted in this process: a bug, reported as one
        # files from disk may have been edited by hand (and resealed): say which one cannot be read
        detail = [ln for ln in str(exc).splitlines() if ln.strip()]
        raise ModelError(f"cannot translate this symbol to ONNX ({type(exc).__name__}: "
                         f"{detail[-1][:200] if detail else ''})",
                         file=conv.files["symbol.json"]) from None


def _size(path):
    import os
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _params_estimate(conv):
    est = budget.Estimate()
    est.add("weights", 3 * sum(v.size * 4 for d in (conv.arg_params, conv.aux_params) for v in d.values()))
    return est


def _is_model_prefix(source):
    """A converted-model PREFIX (PREFIX-symbol.json exists) rather than a prototxt path."""
    import os
    return os.path.isfile(f"{source}-symbol.json") and not os.path.isfile(str(source))


def load_plugin(path):
    """Register the layer types of a plug-in file (as `--plugin` does); returns what it added
    (`.types`). See caffe2mx.converter.plugins for what a plug-in registers and the rules."""
    from .converter import plugins
    return plugins.load_plugin(path)


def load_proto(path):
    """Add a fork's parameter messages to the schema (as `--proto` does), before reading nets
    that use them; returns notes on fields moved to free numbers."""
    from .converter import plugins
    return plugins.load_proto(path)


def inspect(prototxt, caffemodel=None, *, input_shapes=None):
    """Per-layer rows (type, output shape, parameters, multiply-adds) of a Caffe net."""
    from .converter.inspect import inspect_net
    return inspect_net(_net(prototxt, input_shapes), caffemodel)


__all__ = ["convert", "optimize", "load", "verify", "export_onnx", "inspect", "read_net", "load_plugin", "load_proto", "load_net", "convert_net", "save",
           "Conversion", "Net"]
