"""Per-layer type, output shape, parameter count and multiply-adds of a Caffe net, a
converted model, or a caffe2mx.mxmodels Gluon model, with totals."""
import json
import os

from ..converter import budget
from ..converter.errors import UsageError
from ..converter.inspect import format_table, inspect_net, totals
from ..converter.pipeline import read_net
from ._options import add_input_shape, add_max_memory, add_weights, input_shapes, weights_of

NAME = "inspect"
HELP = "per-layer shapes, parameter counts and multiply-adds"


def add_arguments(p):
    p.add_argument("prototxt", nargs="?")
    add_weights(p)
    p.add_argument("--model", metavar="PREFIX|NAME",
                   help="a converted model PREFIX (its prototxt, as recorded in the name map), or a registered "
                        "Gluon model NAME (same as --zoo)")
    p.add_argument("--zoo", metavar="NAME", help="a registered Gluon model instead of a prototxt")
    p.add_argument("--zoo-input-shape", "--input-shape-zoo", dest="zoo_input_shape", metavar="N,C,H,W",
                   help="input shape for a Gluon model (default: one image at the model's native size, from its "
                        "registered config: 224, 32 for CIFAR models, 112 for face models)")
    add_input_shape(p)
    p.add_argument("--json", action="store_true", help="rows and totals as JSON")
    add_max_memory(p)


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


def _prototxt_of_model(prefix):
    from ..converter.model_files import load
    name_map = load(prefix).name_map
    proto = name_map.get("prototxt")
    if not proto or not os.path.isfile(proto):
        raise UsageError(f"--model {prefix}: its prototxt ({proto or 'not recorded'}) is not there; "
                         f"give the prototxt instead")
    return proto, {k: tuple(v) for k, v in (name_map.get("input_shapes") or {}).items()}


def run(args):
    zoo = args.zoo
    model_prefix = None
    if args.model:
        if os.path.isfile(f"{args.model}-symbol.json"):
            model_prefix = args.model
        else:
            zoo = args.model
    if sum(bool(x) for x in (args.prototxt, zoo, model_prefix)) != 1:
        raise UsageError("give one of: a prototxt, --model PREFIX (a converted model) or --zoo NAME")
    if zoo:
        shape = tuple(int(d) for d in args.zoo_input_shape.split(",")) if args.zoo_input_shape else None
        rows = gluon_rows(zoo, shape)
        title = f"Gluon model {zoo}"
    else:
        proto, shapes = (args.prototxt, input_shapes(args)) if args.prototxt else _prototxt_of_model(model_prefix)
        net = read_net(proto, shapes)
        if weights_of(args):
            budget.check(net, "inspect", caffemodel=weights_of(args))
        rows = inspect_net(net, weights_of(args))
        title = proto
    if args.json:
        print(json.dumps({"rows": rows, "totals": totals(rows)}, indent=1))
    else:
        print(format_table(rows, title))
    return 0
