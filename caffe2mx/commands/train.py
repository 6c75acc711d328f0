"""Train or fine-tune a caffe2mx.mxmodels model: from scratch, from converted Caffe weights
(--from-caffe), with the seeds' recipes (--recipe), on one process or a parameter-server job
(--launch local|ssh --kvstore dist_sync). Writes DIR/model-NNNN.params checkpoints,
DIR/log.jsonl and DIR/learning-curve.png."""
from ..converter.errors import UsageError

NAME = "train"
HELP = "train or fine-tune a zoo model (recipes, checkpoints, resume, distributed)"


def add_arguments(p):
    from ..mxmodels.training.options import add_arguments as add_options
    add_options(p)
    p.add_argument("--list-recipes", action="store_true", help="list the recipes and exit")
    p.add_argument("--list-stages", action="store_true", help="list the --model's stages (for --freeze) and exit")


def run(args):
    from ..mxmodels.training import RECIPES, train
    from ..mxmodels.training.options import DEFAULTS
    if args.list_recipes:
        for r in RECIPES.values():
            print(f"{r.name:18s} {r.summary}")
        return 0
    if args.list_stages:
        return _list_stages(args)
    options = {k: v for k, v in vars(args).items() if k in DEFAULTS}
    options["quiet"] = bool(args.quiet)
    train(**options)
    return 0


def _list_stages(args):
    from ..mxmodels import get_model
    from ..mxmodels.training.network import stages
    if not getattr(args, "model", None):
        raise UsageError("--list-stages needs --model NAME")
    try:
        net = get_model(args.model)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for name, block in stages(net):
        print(f"{name:10s} {type(block).__name__}")
    return 0
