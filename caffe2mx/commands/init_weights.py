"""Write seeded weights for every learnable layer of a net as a standard caffemodel.

Convolutions are He-scaled (with a per-layer gain), BN statistics are calibrated on the
activations of a seeded input with real spread (means away from 0, inverse stds away
from 1). The output is a plain NetParameter that Caffe (the fork, for BN/Interp nets)
loads with CopyTrainedLayersFrom."""
from pathlib import Path

from ..converter import budget
from ..converter.pipeline import read_net
from ..converter.staging import check_targets
from ..seeding import write_init_weights
from ._options import add_force, add_input_shape, add_max_memory, input_shapes

NAME = "init-weights"
HELP = "write seeded weights for a prototxt as a .caffemodel"


def add_arguments(p):
    p.add_argument("prototxt")
    p.add_argument("-o", "--output", required=True, metavar="NET.caffemodel",
                   help="the caffemodel to write, or a directory (existing, or ending in /) for "
                        "DIR/<prototxt name>.caffemodel; missing directories are created")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights (default 0)")
    p.add_argument("--no-calibrate", action="store_true",
                   help="draw BN statistics independently instead of calibrating them on activations")
    add_force(p)
    add_max_memory(p)
    add_input_shape(p)


def run(args):
    out = Path(args.output)
    if args.output.endswith("/") or out.is_dir():
        out = out / f"{Path(args.prototxt).stem}.caffemodel"
    check_targets([out], force=args.force, inputs=[args.prototxt])
    net = read_net(args.prototxt, input_shapes(args))
    budget.check(net, "init-weights", seeded=not args.no_calibrate)
    write_init_weights(net, out, seed=args.seed, calibrate_bn=not args.no_calibrate, force=args.force,
                       inputs=[args.prototxt])
    if not args.quiet:
        print(out)
    return 0
