"""Write an ONNX model of a Caffe net (or of an already converted MXNet model) that passes the
ONNX checker (full_check) and computes what the MXNet conversion computes.

Weights are initializers, the batch dimension is dynamic unless --static-batch, node names
are the Caffe layer names, and the model's metadata maps every Caffe blob to its ONNX
value (read by `caffe2mx verify --reference onnxruntime`). Nothing is written on failure.
"""
from pathlib import Path

from caffe2mx.converter.errors import UsageError
from caffe2mx.progress import Progress

from ._options import (add_bn_blob3, add_force, add_input_shape, add_max_memory, add_model, add_seed,
                       add_weights, input_shapes, weights_of)

NAME = "export-onnx"
HELP = "export a Caffe net or a converted MXNet model to ONNX"


def add_arguments(p):
    from caffe2mx.converter.onnx_export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
    p.add_argument("prototxt", nargs="?", help="the Caffe deploy net (or use --model)")
    add_weights(p)
    add_model(p, "export a converted model instead: PREFIX-symbol.json, PREFIX-0000.params and "
                 "PREFIX-namemap.json (--symbol is an alias)", aliases=("--symbol",))
    p.add_argument("-o", "--output", required=True, metavar="NET.onnx",
                   help="the ONNX file to write, or a directory (existing, or ending in /) for DIR/<name>.onnx; "
                        "missing directories are created")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET})")
    p.add_argument("--static-batch", action="store_true", help="fix the batch dimension to the net's declared one")
    p.add_argument("--simplify", action="store_true",
                   help="simplify the graph with onnxsim or onnxoptimizer (optional packages; off by default)")
    add_bn_blob3(p)
    add_seed(p)
    add_force(p)
    add_max_memory(p)
    add_input_shape(p)


def output_file(output, source):
    """NET.onnx from -o: a directory (existing or ending in '/') gets <source name>.onnx."""
    text, path = str(output), Path(output)
    if text.endswith("/") or path.is_dir():
        return path / f"{Path(str(source)).name.removesuffix('.prototxt')}.onnx"
    return path


def run(args):
    from caffe2mx.api import export_onnx
    caffemodel = weights_of(args)
    if (args.prototxt is None) == (args.model is None):
        raise UsageError("give either NET.prototxt or --model PREFIX")
    if args.model and (caffemodel or args.seed is not None or args.input_shape):
        raise UsageError("a caffemodel, --seed and --input-shape go with a prototxt, not with --model (the model "
                         "holds its weights and shapes)")
    source = args.prototxt or args.model
    out = output_file(args.output, source)
    progress = Progress(args.quiet)
    try:
        model = export_onnx(source if args.prototxt else args.model, caffemodel, out, opset=args.opset,
                            dynamic_batch=not args.static_batch, simplify=args.simplify, bn_blob3=args.bn_blob3,
                            seed=args.seed, input_shapes=input_shapes(args), progress=progress, force=args.force)
    finally:
        progress.done()
    n_init = len(model.graph.initializer)
    print(f"wrote {out}: opset {args.opset}, {len(model.graph.node)} nodes, {n_init} initializers, "
          f"batch {'static' if args.static_batch else 'dynamic'}")
    return 0
