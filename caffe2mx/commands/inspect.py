"""Per-layer type, output shape, parameter count and multiply-adds of a Caffe net or a
caffe2mx.mxmodels Gluon model, with totals."""
import json

from ..converter.errors import UsageError
from ..converter.inspect import format_table, inspect_net, totals

NAME = "inspect"
HELP = "per-layer shapes, parameter counts and multiply-adds"


def add_arguments(p):
    p.add_argument("prototxt", nargs="?")
    p.add_argument("--caffemodel", metavar="W", help="also check the caffemodel's blobs against the net")
    p.add_argument("--model", metavar="NAME", help="a registered Gluon model instead of a prototxt")
    p.add_argument("--input-shape", metavar="N,C,H,W",
                   help="input shape for --model (default: one image at the model's native size, "
                        "from its registered config: 224, 32 for CIFAR models, 112 for face models)")
    p.add_argument("--json", action="store_true", help="rows and totals as JSON")


def native_input_shape(name):
    """One image at the size the registered model is built for (its registry config)."""
    from ..mxmodels import model_config
    try:
        return model_config(name).input_shape
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def gluon_rows(name, input_shape=None):
    from ..mxmodels import get_model
    from ..mxmodels import summary
    try:
        model = get_model(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return summary.summarize(model, tuple(input_shape or native_input_shape(name)))


def run(args):
    if bool(args.prototxt) == bool(args.model):
        raise UsageError("give a prototxt or --model NAME (one of them)")
    if args.model:
        shape = tuple(int(d) for d in args.input_shape.split(",")) if args.input_shape else None
        rows = gluon_rows(args.model, shape)
        title = f"Gluon model {args.model}"
    else:
        rows = inspect_net(args.prototxt, args.caffemodel)
        title = args.prototxt
    if args.json:
        print(json.dumps({"rows": rows, "totals": totals(rows)}, indent=1))
    else:
        print(format_table(rows, title))
    return 0
