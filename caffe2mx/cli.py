"""`caffe2mx` command line: one module per subcommand in caffe2mx.commands.

Every caffe2mx error becomes a one-line (or one-block) message on stderr and exit code
2; a parity failure is exit code 1 (verify). Tracebacks are for bugs only.
"""
import argparse
import importlib
import pkgutil
import sys

from . import __version__, commands
from .converter.errors import Caffe2MXError

#: order in `--help`; modules not listed come after, alphabetically
ORDER = ["convert", "inspect", "init-weights", "verify", "export-onnx", "visualize", "dump-script", "train"]


def _command_modules():
    mods = {}
    for info in pkgutil.iter_modules(commands.__path__):
        mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        mods[mod.NAME] = mod
    return sorted(mods.items(), key=lambda kv: (ORDER.index(kv[0]) if kv[0] in ORDER else len(ORDER), kv[0]))


def build_parser():
    parser = argparse.ArgumentParser(prog="caffe2mx", description="Convert Caffe networks to MXNet and ONNX, "
                                     "and prove layer by layer that the numbers did not change.")
    parser.add_argument("--version", action="version", version=f"caffe2mx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, mod in _command_modules():
        p = sub.add_parser(name, help=mod.HELP, description=mod.__doc__)
        p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except Caffe2MXError as exc:
        print(f"caffe2mx {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def convert_main(argv=None):
    """The `convert` console script: `convert NET.prototxt ...` is `caffe2mx convert NET.prototxt ...`."""
    return main(["convert"] + list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
