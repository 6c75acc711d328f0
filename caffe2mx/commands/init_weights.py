"""Write seeded, realistic weights for every learnable layer of a net as a standard caffemodel.

Convolutions are He-scaled (with a per-layer gain), BN statistics are calibrated on the
activations of a seeded input with real spread (means away from 0, inverse stds away
from 1). The output is a plain NetParameter that Caffe (the fork, for BN/Interp nets)
loads with CopyTrainedLayersFrom."""
from pathlib import Path

from ..converter.errors import UsageError
from ..converter.init_weights import write_init_weights
from ._options import add_input_shape, input_shapes

NAME = "init-weights"
HELP = "write seeded weights for a prototxt as a .caffemodel"


def add_arguments(p):
    p.add_argument("prototxt")
    p.add_argument("-o", "--output", required=True, metavar="NET.caffemodel")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-calibrate", action="store_true",
                   help="draw BN statistics independently instead of calibrating them on activations")
    add_input_shape(p)


def run(args):
    out = Path(args.output)
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent}: output directory does not exist")
    write_init_weights(args.prototxt, out, seed=args.seed, input_shapes=input_shapes(args),
                       calibrate_bn=not args.no_calibrate)
    if not args.quiet:
        print(out)
    return 0
