"""Python API mirroring the CLI: convert, load, verify, export_onnx, inspect.

Each function takes what the matching command takes; a prototxt may also be given as a
`Net` already read by `read_net`, so a caller parses a net once for several steps.
"""
from .converter.caffemodel import read_caffemodel
from .converter.model_files import Conversion, load, save
from .converter.pipeline import LoadedNet, Net, bind, convert_net, load_net, read_net


def _net(prototxt, input_shapes=None, progress=None):
    return prototxt if isinstance(prototxt, Net) else read_net(prototxt, input_shapes, progress)


def convert(prototxt, caffemodel=None, *, output_prefix=None, bn_blob3="inv_std", seed=None, input_shapes=None,
            progress=None):
    """Convert a Caffe net; returns a Conversion with .symbol, .arg_params, .aux_params, .name_map.

    Without a caffemodel the net gets seeded weights (`caffe2mx.seeding`, seed 0 unless
    given) and `name_map["seeded_weights"]` says so; a LoadedNet (`bind(net, weights)`) brings
    its own weights. With `output_prefix` the three files PREFIX-symbol.json,
    PREFIX-0000.params and PREFIX-namemap.json are written too.
    """
    if isinstance(prototxt, LoadedNet):
        conv = convert_net(prototxt, bn_blob3=bn_blob3 or "inv_std", progress=progress)
        if output_prefix is not None:
            conv.files = save(conv, output_prefix)
        return conv
    net = _net(prototxt, input_shapes, progress)
    if caffemodel is None:
        from .seeding import seeded_weights
        loaded = bind(net, seeded_weights(net, seed=0 if seed is None else seed))
    else:
        (progress or (lambda m: None))(f"reading {caffemodel}")
        loaded = bind(net, read_caffemodel(caffemodel, progress=progress), caffemodel)
    conv = convert_net(loaded, bn_blob3=bn_blob3 or "inv_std", progress=progress)
    if caffemodel is None:
        conv.name_map["caffemodel"] = None
        conv.name_map["seeded_weights"] = 0 if seed is None else seed
    if output_prefix is not None:
        conv.files = save(conv, output_prefix)
    return conv


def verify(prototxt=None, caffemodel=None, **options):
    """Layer-by-layer parity of a conversion against a reference; see `caffe2mx verify --help`.

    Returns a VerifyRun whose `.outcome.passed` is the verdict.
    """
    from .verification import verify as run
    return run(prototxt, caffemodel, **options)


def export_onnx(source, caffemodel=None, output=None, *, opset=None, dynamic_batch=True, simplify=False,
                bn_blob3="inv_std", seed=None, input_shapes=None, progress=None):
    """ONNX ModelProto of a net (prototxt path, Net, Conversion, or converted-model PREFIX);
    also written to `output` when given."""
    from .converter import onnx_export
    if isinstance(source, Conversion):
        conv = source
    elif isinstance(source, Net) or not _is_model_prefix(source):
        conv = convert(source, caffemodel, bn_blob3=bn_blob3, seed=seed, input_shapes=input_shapes, progress=progress)
    else:
        conv = load(source)
    return onnx_export.export_conversion(conv, output, opset=opset or onnx_export.DEFAULT_OPSET,
                                         dynamic_batch=dynamic_batch, simplify=simplify, progress=progress)


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


__all__ = ["convert", "load", "verify", "export_onnx", "inspect", "read_net", "load_plugin", "load_proto", "load_net", "convert_net", "save",
           "Conversion", "Net"]
