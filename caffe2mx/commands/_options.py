"""Options shared by several commands, so each means the same thing everywhere.

A caffemodel is accepted positionally and as `--caffemodel`; a converted model is `--model
PREFIX`; `--seed` is the seed of seeded weights and `--input-seed` that of a random input;
`-o` takes a prefix or a directory. (A private module: the CLI skips `_`-names.)
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
