"""Per-layer type, output shape, parameter count and multiply-adds of a Caffe net or a
caffe2mx.mxmodels Gluon model, with totals."""
import json

from ..converter.errors import UsageError
from ..converter.input_shapes import parse_input_shape
from ..converter.inspect import format_table, inspect_net, totals
from ._options import input_shapes

NAME = "inspect"
HELP = "per-layer shapes, parameter counts and multiply-adds"


def add_arguments(p):
    p.add_argument("prototxt", nargs="?")
    p.add_argument("--caffemodel", metavar="W", help="also check the caffemodel's blobs against the net")
    p.add_argument("--model", metavar="NAME", help="a registered Gluon model instead of a prototxt")
    p.add_argument("--input-shape", action="append", default=[], metavar="[NAME=]N,C,H,W",
                   help="with a prototxt: NAME=N,C,H,W, the shape of net input NAME (repeatable; sets it for a "
                        "data layer or an input without dims, or replaces the declared one); with --model: "
                        "N,C,H,W (default: 1,3,224,224; 32x32 for cifar_*, 112x112 for face_*)")
    p.add_argument("--json", action="store_true", help="rows and totals as JSON")


def native_input_shape(name):
    """The input a registered model is built for: CIFAR 32x32, face 112x112, ImageNet 224x224."""
    side = 32 if name.startswith("cifar_") else 112 if name.startswith("face_") else 224
    return (1, 3, side, side)


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
        if len(args.input_shape) > 1:
            raise UsageError("--model takes one --input-shape N,C,H,W")
        shape = parse_input_shape(args.input_shape[0], allow_bare=True)[1] if args.input_shape else None
        rows = gluon_rows(args.model, shape)
        title = f"Gluon model {args.model}"
    else:
        rows = inspect_net(args.prototxt, args.caffemodel, input_shapes=input_shapes(args))
        title = args.prototxt
    if args.json:
        print(json.dumps({"rows": rows, "totals": totals(rows)}, indent=1))
    else:
        print(format_table(rows, title))
    return 0
