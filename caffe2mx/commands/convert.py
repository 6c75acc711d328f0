"""Convert a Caffe deploy net (and its caffemodel) to MXNet: PREFIX-symbol.json,
PREFIX-0000.params (arg:/aux: keys) and PREFIX-namemap.json (Caffe blob -> MXNet output)."""
import sys
from pathlib import Path

from ..api import convert
from ..converter.errors import UsageError
from ..progress import Progress
from ._options import add_input_shape, input_shapes

NAME = "convert"
HELP = "convert a prototxt (+ caffemodel) to an MXNet symbol and params"


def add_arguments(p):
    p.add_argument("prototxt", help="deploy .prototxt (layer {} or legacy layers {})")
    p.add_argument("caffemodel", nargs="?", help="trained .caffemodel; without one, seeded weights are used")
    p.add_argument("--caffemodel", dest="caffemodel_opt", metavar="W", help="same as the positional caffemodel")
    p.add_argument("-o", "--output", metavar="PREFIX",
                   help="output prefix (default: out/<prototxt name>); writes PREFIX-symbol.json, "
                        "PREFIX-0000.params, PREFIX-namemap.json")
    p.add_argument("--bn-blob3", choices=["inv_std", "variance"], default="inv_std",
                   help="meaning of the 4th blob of `BN` layers: the Residual Attention Network fork stores an "
                        "inverse standard deviation (default); other forks store a variance")
    p.add_argument("--seed", type=int, default=0, help="seed for weights when no caffemodel is given (default 0)")
    p.add_argument("--to-gluon", metavar="MODEL",
                   help="also load the weights into this caffe2mx.mxmodels Gluon model and save "
                        "PREFIX-gluon.params")
    add_input_shape(p)


def _load_gluon(name, prototxt, conv, bn_blob3):
    """The Gluon model `name` with the conversion's own weights (those of the caffemodel, or
    the seeded ones), or an error listing what does not correspond; nothing is written then."""
    from ..converter.caffemodel import LayerBlobs
    from ..converter.errors import ModelError
    from ..mxmodels import get_model
    from ..mxmodels.caffe_bridge import CaffeBridgeError, load_caffe
    try:
        model = get_model(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    weights = {n.name: LayerBlobs(n.name, n.type, n.blobs, (False,) * len(n.blobs))
               for n in conv.net.graph.nodes if n.blobs}
    try:
        load_caffe(model, prototxt, weights, blob3_mode=bn_blob3)
    except CaffeBridgeError as exc:
        raise ModelError(f"the net does not match Gluon model '{name}': {exc}", file=prototxt) from None
    return model


def run(args):
    caffemodel = args.caffemodel or args.caffemodel_opt
    if args.caffemodel and args.caffemodel_opt:
        raise UsageError("give the caffemodel once (positional or --caffemodel)")
    prefix = Path(args.output) if args.output else Path("out") / Path(args.prototxt).stem
    from ..converter.pipeline import check_output_prefix, save
    check_output_prefix(prefix, create_parent=not args.output)
    progress = Progress(quiet=args.quiet)
    conv = convert(args.prototxt, caffemodel, output_prefix=None, bn_blob3=args.bn_blob3, seed=args.seed,
                   input_shapes=input_shapes(args), progress=progress)
    gluon_net = None
    if args.to_gluon:
        gluon_net = _load_gluon(args.to_gluon, args.prototxt, conv, args.bn_blob3)
    files = save(conv, prefix, create_parent=not args.output)
    if gluon_net is not None:
        gluon_net.save_parameters(f"{prefix}-gluon.params")
        files["gluon"] = f"{prefix}-gluon.params"
    progress.done()
    if caffemodel is None and not args.quiet:
        print(f"note: no caffemodel given: used seeded weights (seed {args.seed})", file=sys.stderr)
    for note in conv.net.graph.notes:
        print(f"note: {note}", file=sys.stderr)
    for adj in conv.name_map["adjustments"]:
        print(f"adjusted: layer '{adj['layer']}' ({adj['type']}): {adj['message']}", file=sys.stderr)
    if not args.quiet:
        for f in files.values():
            print(f)
    return 0
