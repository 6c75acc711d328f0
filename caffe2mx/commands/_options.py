"""Options shared by several commands, so each means the same thing everywhere.

A caffemodel is accepted positionally and as `--caffemodel`; a converted model is `--model
PREFIX`; `--seed` is the seed of seeded weights and `--input-seed` that of a random input;
`-o` takes a prefix or a directory; `--input-shape NAME=N,C,H,W` (repeatable) shapes a net input,
and comes with `--plugin FILE.py` / `--proto FILE.proto` (your own layer types and their parameters).
(A private module: the CLI skips `_`-names.)
"""
from ..converter.errors import UsageError


def add_weights(p, positional=True):
    """NET.caffemodel positionally (after the prototxt) or as --caffemodel."""
    if positional:
        p.add_argument("caffemodel", nargs="?", help="trained .caffemodel; without one, seeded weights are used")
    p.add_argument("--caffemodel", dest="caffemodel_opt", metavar="W",
                   help="the caffemodel (same as giving it positionally)")


def weights_of(args):
    pos, opt = getattr(args, "caffemodel", None), getattr(args, "caffemodel_opt", None)
    if pos and opt and pos != opt:
        raise UsageError("give the caffemodel once (positional or --caffemodel)")
    return pos or opt


def add_seed(p, what="weights"):
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the seeded weights when there is no caffemodel (default 0, or the model's own)")


def add_bn_blob3(p, default="inv_std"):
    p.add_argument("--bn-blob3", choices=["inv_std", "variance"], default=default,
                   help="meaning of the 4th blob of `BN` layers: the Residual Attention Network fork stores an "
                        "inverse standard deviation" + (" (default)" if default == "inv_std" else "") +
                        "; other forks (TSN, PSPNet) store a variance")


def add_model(p, help_text, aliases=()):
    p.add_argument("--model", *aliases, dest="model", metavar="PREFIX", help=help_text)


def add_force(p):
    p.add_argument("--force", action="store_true",
                   help="replace existing output files (without it, a command never overwrites a file it did not "
                        "create in this run)")


def add_max_memory(p):
    p.add_argument("--max-memory", metavar="SIZE", default=None,
                   help="refuse, before allocating, work estimated to need more memory than SIZE (e.g. 8G, 512M, "
                        "50%% of available memory, or none); default: 75%% of the memory available at start")


INPUT_SHAPE_HELP = ("shape of the net input NAME (repeatable): sets it for a data layer or an input declared "
                    "without dims, or replaces the declared one (e.g. a 1x1 placeholder)")


def add_input_shape(p, help=INPUT_SHAPE_HELP):
    """`--input-shape NAME=N,C,H,W`, repeatable; read it back with `input_shapes(args)`.

    Every command that reads a net takes it, so it also brings the options that extend what
    a net may contain (`--plugin`, `--proto`; see add_extensions)."""
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=N,C,H,W", help=help)
    add_extensions(p)


def add_extensions(p):
    """`--plugin FILE.py` and `--proto FILE.proto` (both repeatable), loaded by the CLI before the
    command runs (load_extensions), so before any net is read."""
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="a Python file registering your own layer types (handler + NumPy reference; see the "
                        "README's plug-in section); repeatable. Only files named here are imported")
    p.add_argument("--proto", action="append", default=[], metavar="FILE.proto",
                   help="your fork's parameter messages (a .proto, or a descriptor set from protoc "
                        "--descriptor_set_out), added to the schema so `my_param { ... }` parses; repeatable")


def load_extensions(args, warn=None):
    """Load the --proto files, then the --plugin files, in the order given (no-op without them)."""
    from ..converter import plugins
    for path in getattr(args, "proto", None) or ():
        for note in plugins.load_proto(path):
            if warn is not None:
                warn(note)
    for path in getattr(args, "plugin", None) or ():
        plugins.load_plugin(path)


def input_shapes(args):
    """{name: shape} from the --input-shape options (None when none were given); UsageError on bad ones."""
    from ..converter.input_shapes import parse_input_shapes
    return parse_input_shapes(getattr(args, "input_shape", None)) or None
