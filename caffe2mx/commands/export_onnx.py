"""Write an ONNX model of a Caffe net (or of an already converted MXNet model) that passes the
ONNX checker (full_check) and computes what the MXNet conversion computes.

Weights are initializers, the batch dimension is dynamic unless --static-batch, node names
are the Caffe layer names, and the model's metadata maps every Caffe blob to its ONNX
value (read by `caffe2mx verify --reference onnxruntime`). Nothing is written on failure.
"""
from caffe2mx.converter.errors import UsageError
from caffe2mx.progress import Progress

from ._options import add_input_shape, input_shapes

NAME = "export-onnx"
HELP = "export a Caffe net or a converted MXNet model to ONNX"


def add_arguments(p):
    from caffe2mx.converter.onnx_export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
    p.add_argument("prototxt", nargs="?", help="the Caffe deploy net (or use --symbol)")
    p.add_argument("--caffemodel", metavar="W", help="its weights (default: seeded weights, as `convert` makes)")
    p.add_argument("--symbol", metavar="PREFIX", help="export a converted model instead: PREFIX-symbol.json, "
                   "PREFIX-0000.params and PREFIX-namemap.json")
    p.add_argument("-o", "--output", required=True, metavar="NET.onnx", help="the ONNX file to write")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET})")
    p.add_argument("--static-batch", action="store_true", help="fix the batch dimension to the net's declared one")
    p.add_argument("--simplify", action="store_true",
                   help="simplify the graph with onnxsim or onnxoptimizer (optional packages; off by default)")
    p.add_argument("--bn-blob3", choices=["inv_std", "variance"], default="inv_std",
                   help="meaning of the fork BN layer's 4th blob (default inv_std)")
    p.add_argument("--seed", type=int, default=None, help="seed of the seeded weights when there is no caffemodel")
    add_input_shape(p)


def run(args):
    from caffe2mx.converter.onnx_export import export_onnx
    if (args.prototxt is None) == (args.symbol is None):
        raise UsageError("give either NET.prototxt or --symbol PREFIX")
    if args.symbol and (args.caffemodel or args.seed is not None or args.input_shape):
        raise UsageError("--caffemodel, --seed and --input-shape go with a prototxt, not with --symbol")
    progress = Progress(args.quiet)
    try:
        model = export_onnx(args.prototxt, args.caffemodel, args.output, symbol_prefix=args.symbol,
                            opset=args.opset, dynamic_batch=not args.static_batch, simplify=args.simplify,
                            bn_blob3=args.bn_blob3, seed=args.seed, input_shapes=input_shapes(args),
                            progress=progress)
    finally:
        progress.done()
    n_init = len(model.graph.initializer)
    print(f"wrote {args.output}: opset {args.opset}, {len(model.graph.node)} nodes, {n_init} initializers, "
          f"batch {'static' if args.static_batch else 'dynamic'}")
    return 0
