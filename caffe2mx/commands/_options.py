"""Options shared by the commands that build a net. Private: cli.py skips `_` modules,
so this is not a command."""
from ..converter.input_shapes import parse_input_shapes

INPUT_SHAPE_HELP = ("shape of the net input NAME (repeatable): sets it for a data layer or an input declared "
                    "without dims, or replaces the declared one (e.g. a 1x1 placeholder)")


def add_input_shape(parser, help=INPUT_SHAPE_HELP):
    """`--input-shape NAME=N,C,H,W`, repeatable; read it back with `input_shapes(args)`."""
    parser.add_argument("--input-shape", action="append", default=[], metavar="NAME=N,C,H,W", help=help)


def input_shapes(args):
    """{name: shape} from the --input-shape options (None when none were given); UsageError on bad ones."""
    return parse_input_shapes(args.input_shape) or None
