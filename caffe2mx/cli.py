"""`caffe2mx` command line: one module per subcommand in caffe2mx.commands.

Exit codes: 0 ok, 1 parity failed (verify), 2 bad input (every caffe2mx error: a one-line
or one-block message naming file, line and layer), 3 an internal error (a bug: one line
asking for a report; the traceback with --debug), 130 interrupted.
"""
import argparse
import importlib
import pkgutil
import signal
import sys
import traceback

from . import __version__, commands
from .commands._options import load_extensions
from .converter import budget, plugins
from .converter.errors import Caffe2MXError, Interrupted

#: order in `--help`; modules not listed come after, alphabetically
ORDER = ["convert", "inspect", "init-weights", "verify", "export-onnx", "visualize", "dump-script", "train"]


def _command_modules():
    mods = {}
    for info in pkgutil.iter_modules(commands.__path__):
        if info.name.startswith("_"):
            continue
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
        p.add_argument("--debug", action="store_true", help="print the traceback of an internal error")
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        load_extensions(args, warn=lambda note: print(f"note: {note}", file=sys.stderr))
        with budget.limited(getattr(args, "max_memory", None)):
            return int(args._run(args) or 0)
    except Caffe2MXError as exc:
        print(f"caffe2mx {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Interrupted as exc:
        done = ("the outputs were complete when it came and are in place" if exc.completed
                else "nothing was written; existing files are unchanged")
        print(f"caffe2mx {args.command}: interrupted by {signal.Signals(exc.signum).name}: {done}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print(f"caffe2mx {args.command}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"caffe2mx {args.command}: out of memory; the estimate before the run was too low: this is a bug "
              f"in caffe2mx: please report it with the command line (a lower --max-memory refuses such runs "
              f"up front)", file=sys.stderr)
        return 3
    except Exception as exc:  # a bug: say so in one line, keep exit codes 1 and 2 meaningful
        if getattr(args, "debug", False):
            traceback.print_exc()
        culprit = plugins.blame(exc)
        if culprit is not None:  # the user's own plug-in code raised: theirs to fix, like bad input
            print(f"caffe2mx {args.command}: error: {culprit}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
        detail = str(exc).strip().splitlines()
        detail = f": {detail[-1][:200]}" if detail else ""
        print(f"caffe2mx {args.command}: internal error ({type(exc).__name__}{detail}); this is a bug in "
              f"caffe2mx: please report it with the command line"
              + (" and the traceback above" if getattr(args, "debug", False) else " and its output with --debug"),
              file=sys.stderr)
        return 3


def convert_main(argv=None):
    """The `convert` console script: `convert NET.prototxt ...` is `caffe2mx convert NET.prototxt ...`."""
    return main(["convert"] + list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
