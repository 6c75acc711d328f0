"""The files of a converted model, written and read in one place.

A conversion is PREFIX-symbol.json, PREFIX-0000.params (`arg:`/`aux:` keys, loadable by
plain MXNet) and PREFIX-namemap.json (the Caffe <-> MXNet name map every tool reads).
`save` writes all three or none; `load` reads them back with located errors.
"""
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError, UsageError

SUFFIXES = ("symbol.json", "0000.params", "namemap.json")


@dataclass
class Conversion:
    """A converted net: MXNet symbol and parameters plus the name map (and, when converted
    in this process, the weighted Caffe graph it came from as `.net`)."""

    symbol: object
    arg_params: dict  # name -> mx.nd.NDArray
    aux_params: dict
    name_map: dict
    net: object = None
    files: dict = None

    def input_names(self):
        """MXNet variable names of the Caffe inputs the symbol reads, in net order."""
        used = set(self.symbol.list_arguments())
        return [v for v in self.name_map.get("inputs", {}).values() if v in used]

    def to_gluon(self, ctx=None):
        """A ready `gluon.SymbolBlock` holding this conversion's parameters (on `ctx`)."""
        import mxnet as mx
        ctx = ctx or mx.cpu()
        block = mx.gluon.SymbolBlock(self.symbol, [mx.sym.var(n) for n in self.input_names()])
        values = {**self.arg_params, **self.aux_params}
        block.collect_params().load_dict({k: v for k, v in values.items()}, ctx=ctx, ignore_extra=True)
        return block


def files_of(prefix):
    return {s: f"{prefix}-{s}" for s in SUFFIXES}


def output_prefix(output, stem):
    """PREFIX from an -o value: an existing directory or one ending in '/' means DIR/<stem>."""
    if output is None:
        return Path("out") / stem
    text = str(output)
    path = Path(output)
    if text.endswith(("/", os.sep)) or path.is_dir():
        return path / stem
    return path


def check_output_prefix(prefix):
    """Fail before any work if PREFIX-* cannot be written (missing parents are created later)."""
    prefix = Path(prefix)
    out_dir = prefix.parent if str(prefix.parent) else Path(".")
    probe = out_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{out_dir}: {probe} is not a directory")
    if not os.access(probe, os.W_OK):
        raise UsageError(f"{out_dir}: output directory is not writable")
    for f in files_of(prefix).values():
        if Path(f).is_dir():
            raise UsageError(f"{f}: is a directory; choose another output prefix")
    return out_dir


def save(conv, prefix):
    """Write PREFIX-symbol.json, PREFIX-0000.params and PREFIX-namemap.json, all or nothing."""
    import mxnet as mx
    prefix = Path(prefix)
    out_dir = check_output_prefix(prefix)
    base = prefix.name
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{base}.", dir=str(out_dir)))
    except OSError as exc:
        raise UsageError(f"{out_dir}: cannot write output there ({exc.strerror})") from None
    names = {s: f"{base}-{s}" for s in SUFFIXES}
    try:
        conv.symbol.save(str(staging / names["symbol.json"]))
        params = {f"arg:{k}": v for k, v in conv.arg_params.items()}
        params.update({f"aux:{k}": v for k, v in conv.aux_params.items()})
        mx.nd.save(str(staging / names["0000.params"]), params)
        (staging / names["namemap.json"]).write_text(json.dumps(conv.name_map, indent=1))
        for name in names.values():
            os.replace(staging / name, out_dir / name)
    except OSError as exc:
        for name in names.values():
            (out_dir / name).unlink(missing_ok=True)
        raise UsageError(f"{out_dir}: cannot write output there ({exc.strerror})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {s: str(out_dir / name) for s, name in names.items()}


def load(prefix):
    """A Conversion from PREFIX-symbol.json / -0000.params / -namemap.json (net is None).

    Nets without parameters (their params file holds an empty list) load too; a missing,
    truncated or foreign file is a ModelError naming it.
    """
    import mxnet as mx
    files = files_of(prefix)
    missing = [f for f in files.values() if not os.path.isfile(f)]
    if missing:
        raise UsageError(f"{prefix}: missing {', '.join(missing)} (write them with `caffe2mx convert -o PREFIX`)")
    try:
        name_map = json.loads(Path(files["namemap.json"]).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"not a caffe2mx name map ({exc})", file=files["namemap.json"]) from None
    if not isinstance(name_map, dict) or not str(name_map.get("format", "")).startswith("caffe2mx-namemap/"):
        raise ModelError("not a caffe2mx name map (no caffe2mx-namemap format tag)", file=files["namemap.json"])
    try:
        symbol = mx.sym.load(files["symbol.json"])
    except Exception as exc:  # MXNetError or JSON errors from a corrupt file
        raise ModelError(f"not an MXNet symbol file ({_last_line(exc)})", file=files["symbol.json"]) from None
    try:
        saved = mx.nd.load(files["0000.params"])
    except Exception as exc:
        raise ModelError(f"not an MXNet params file ({_last_line(exc)})", file=files["0000.params"]) from None
    saved = saved if isinstance(saved, dict) else {}  # a net without parameters saves an empty list
    args = {k[4:]: v for k, v in saved.items() if k.startswith("arg:")}
    auxs = {k[4:]: v for k, v in saved.items() if k.startswith("aux:")}
    return Conversion(symbol=symbol, arg_params=args, aux_params=auxs, name_map=name_map, files=files)


def _last_line(exc):
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:200]
