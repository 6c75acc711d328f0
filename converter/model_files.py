"""The files of a converted model, written and read in one place.

A conversion is PREFIX-symbol.json, PREFIX-0000.params (`arg:`/`aux:` keys, loadable by
plain MXNet) and PREFIX-namemap.json (the Caffe <-> MXNet name map every tool reads).

`save` writes all of them through one staging directory (converter/staging.py): a failed
or interrupted run leaves the old files as they were, and existing files are replaced only
with `force`. The name map is written last and records, under "integrity", the SHA-256 of
each file it belongs with and of its own content; `load` checks them, so a reader never
takes files of two generations (or a truncated or edited file) for one model. It also
checks that the symbol's parameters are all there with the shapes the symbol infers, so
every tool downstream gets a model that binds, or a located ModelError.
"""
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError, UsageError
from .mxnet_import import import_mxnet
from .staging import Staging, check_targets

SUFFIXES = ("symbol.json", "0000.params", "namemap.json")
INTEGRITY = "integrity"


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
        mx = import_mxnet()
        ctx = ctx or mx.cpu()
        block = mx.gluon.SymbolBlock(self.symbol, [mx.sym.var(n) for n in self.input_names()])
        values = {**self.arg_params, **self.aux_params}
        block.collect_params().load_dict({k: v for k, v in values.items()}, ctx=ctx, ignore_extra=True)
        return block


def files_of(prefix, extra=()):
    return {s: f"{prefix}-{s}" for s in tuple(SUFFIXES) + tuple(extra)}


def output_prefix(output, stem):
    """PREFIX from an -o value: an existing directory or one ending in '/' means DIR/<stem>."""
    if output is None:
        return Path("out") / stem
    text = str(output)
    path = Path(output)
    if text.endswith(("/", os.sep)) or path.is_dir():
        return path / stem
    return path


def check_output_prefix(prefix, *, force=False, inputs=(), extra=()):
    """Fail before any work if PREFIX-* cannot be written: a target is a directory or an
    input of the run, or exists and `force` is not given (missing parents are created later)."""
    return check_targets(list(files_of(Path(prefix), extra).values()), force=force, inputs=inputs)


def sha256_file(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                return h.hexdigest()
            h.update(block)


def _canonical(name_map):
    """The bytes a name map's own hash covers: its content without the integrity record."""
    body = {k: v for k, v in name_map.items() if k != INTEGRITY}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True).encode("utf-8")


def save(conv, prefix, *, force=False, inputs=(), extra=None):
    """Write PREFIX-symbol.json, PREFIX-0000.params and PREFIX-namemap.json, all or nothing.

    `extra` ({suffix: writer(path)}) adds files written in the same staging (e.g.
    "gluon.params"). Returns {suffix: path}.
    """
    mx = import_mxnet()
    prefix = Path(prefix)
    extra = dict(extra or {})
    targets = {s: Path(f) for s, f in files_of(prefix, extra).items()}
    with Staging(list(targets.values()), force=force, inputs=inputs) as st:
        staged = {s: st.path(t) for s, t in targets.items()}
        params = {f"arg:{k}": v for k, v in conv.arg_params.items()}
        params.update({f"aux:{k}": v for k, v in conv.aux_params.items()})
        try:
            conv.symbol.save(str(staged["symbol.json"]))
            mx.nd.save(str(staged["0000.params"]), params)
            for suffix, write in extra.items():
                write(str(staged[suffix]))
        except mx.base.MXNetError as exc:  # MXNet's own writers report a full disk this way
            raise UsageError(f"{prefix.parent}: cannot write output there ({_last_line(exc)})") from None
        name_map = json.loads(json.dumps(conv.name_map))  # as a reader will see it (string keys, lists)
        name_map.pop(INTEGRITY, None)
        files = {s: {"file": targets[s].name, "sha256": sha256_file(staged[s])} for s in targets if s != "namemap.json"}
        name_map[INTEGRITY] = {"files": files, "namemap_sha256": hashlib.sha256(_canonical(name_map)).hexdigest()}
        staged["namemap.json"].write_text(json.dumps(name_map, indent=1))
        st.commit()
    conv.name_map[INTEGRITY] = name_map[INTEGRITY]  # the conversion is now the one in these files
    return {s: str(t) for s, t in targets.items()}


def reseal(prefix):
    """Record the current content of PREFIX-* in its name map's integrity record, after an edit
    made on purpose (a hand-edited symbol, say): `load` checks the files against it."""
    files = files_of(prefix)
    nm_file = Path(files["namemap.json"])
    try:
        name_map = json.loads(nm_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"not a caffe2mx name map ({_last_line(exc)})", file=nm_file) from None
    name_map.pop(INTEGRITY, None)
    record = {s: {"file": Path(f).name, "sha256": sha256_file(f)} for s, f in files.items() if s != "namemap.json"}
    name_map[INTEGRITY] = {"files": record, "namemap_sha256": hashlib.sha256(_canonical(name_map)).hexdigest()}
    with Staging([nm_file], force=True) as st:
        st.path(nm_file).write_text(json.dumps(name_map, indent=1))
        st.commit()


def _check_integrity(name_map, files):
    record = name_map.get(INTEGRITY)
    if record is None:
        return  # written before integrity records existed
    nm_file = files["namemap.json"]
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        raise ModelError("its integrity record is malformed", file=nm_file)
    if record.get("namemap_sha256") != hashlib.sha256(_canonical(name_map)).hexdigest():
        raise ModelError("the name map was changed after it was written (its content hash differs); "
                         "convert again", file=nm_file)
    for suffix in ("symbol.json", "0000.params"):
        entry = record["files"].get(suffix)
        if not isinstance(entry, dict) or "sha256" not in entry:
            raise ModelError(f"its integrity record has no hash for the {suffix} file", file=nm_file)
        if sha256_file(files[suffix]) != entry["sha256"]:
            raise ModelError(f"does not belong with {nm_file}: its content hash differs from the one recorded "
                             f"when they were written together (files of two conversions, or a truncated or "
                             f"changed file); convert again", file=files[suffix])


def _expect(cond, what, nm_file):
    if not cond:
        raise ModelError(f"not a valid caffe2mx name map: {what}", file=nm_file)


def _check_name_map(nm, nm_file):
    """The parts of a name map every tool reads, with the types they read them as."""
    for key in ("inputs", "input_shapes", "outputs", "blobs", "layers", "nodes"):
        _expect(isinstance(nm.get(key), dict), f"'{key}' is missing or not a mapping", nm_file)
    _expect(all(isinstance(v, str) for v in nm["inputs"].values()), "'inputs' maps blobs to names", nm_file)
    for name, shape in nm["input_shapes"].items():
        _expect(_shape_list(shape), f"input shape of '{name}' is not a list of positive integers", nm_file)
    _expect(all(isinstance(v, dict) for v in nm["layers"].values()), "'layers' entries are not mappings", nm_file)
    for key in ("versions", "options"):
        _expect(isinstance(nm.get(key, {}), dict), f"'{key}' is not a mapping", nm_file)
    for key in ("net", "prototxt", "caffemodel"):
        _expect(nm.get(key) is None or isinstance(nm[key], str), f"'{key}' is not a string", nm_file)
    seed = nm.get("seeded_weights")
    _expect(seed is None or (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**63),
            "'seeded_weights' is not a seed", nm_file)
    _expect(nm.get("options", {}).get("bn_blob3", "inv_std") in ("inv_std", "variance"),
            "options.bn_blob3 is neither inv_std nor variance", nm_file)
    _expect(isinstance(nm.get("adjustments", []), list), "'adjustments' is not a list", nm_file)


_DTYPE_BYTES = {0: 4, 1: 8, 2: 2, 3: 1, 4: 4, 5: 1, 6: 8, 7: 1, 12: 2}


def _check_params_layout(path):
    """Walk an MXNet .params file (NDArray list: magic 0x112, arrays with their shapes, then the
    names) without loading it: every array's data must lie inside the file, so that a damaged
    header can never make MXNet allocate more than the file holds."""
    import struct
    size = os.path.getsize(path)

    def bad(why):
        return ModelError(f"not an MXNet params file ({why})", file=path)

    with open(path, "rb") as f:
        def read(fmt):
            n = struct.calcsize(fmt)
            raw = f.read(n)
            if len(raw) != n:
                raise bad(f"truncated at byte {f.tell()}")
            return struct.unpack(fmt, raw)

        magic, _, count = read("<QQQ")
        if magic != 0x112:
            raise bad(f"magic {magic:#x}")
        if count > size:
            raise bad(f"{count} arrays in {size} bytes")
        for i in range(count):
            array_magic, stype, ndim = read("<IiI")
            if array_magic != 0xF993FAC9 or stype != 0 or ndim > 32:
                raise bad(f"array {i} has an unexpected header (magic {array_magic:#x}, storage {stype}, {ndim} axes)")
            dims = read(f"<{ndim}q") if ndim else ()
            if not ndim:
                continue
            _, _, dtype = read("<iii")
            if any(d < 0 for d in dims) or dtype not in _DTYPE_BYTES:
                raise bad(f"array {i} has shape {list(dims)} and type {dtype}")
            nbytes = _DTYPE_BYTES[dtype]
            for d in dims:
                nbytes *= d
            if f.tell() + nbytes > size:
                raise bad(f"array {i} of shape {list(dims)} runs past the end of the file")
            f.seek(nbytes, os.SEEK_CUR)
        (names,) = read("<Q")
        if names not in (0, count):
            raise bad(f"{names} names for {count} arrays")
        for i in range(names):
            (n,) = read("<Q")
            if f.tell() + n > size:
                raise bad(f"name {i} runs past the end of the file")
            f.seek(n, os.SEEK_CUR)


def _strings(value):
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _shape_list(value):
    return isinstance(value, list) and value and all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                                     for d in value)


def _check_consistency(symbol, name_map, files):
    """The name map can be read against this symbol without surprises: every MXNet node is
    owned by a layer it lists, and every layer, blob and version entry has the fields, of the
    types, that the tools read. (Whether the symbol computes what the name map says, blob by
    blob and shape by shape, is `verify`'s question: a wrong model is a parity failure.)"""
    nm_file = files["namemap.json"]
    try:
        nodes = json.loads(symbol.tojson())["nodes"]
        names = [n["name"] for n in nodes]
    except (ValueError, KeyError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
        raise ModelError(f"not a usable MXNet symbol ({_last_line(exc)})", file=files["symbol.json"]) from None
    layers, owners = name_map["layers"], name_map["nodes"]
    for layer, entry in layers.items():
        ok = (isinstance(entry.get("type"), str) and isinstance(entry.get("mxnet_op"), str)
              and all(_strings(entry.get(k, [])) for k in ("params", "tops", "bottoms", "nodes", "fused_with"))
              and all(f in layers for f in entry.get("fused_with", [])))
        _expect(ok, f"the entry of layer '{layer}' lacks fields or has fields of the wrong type", nm_file)
    _expect(all(isinstance(v, str) for v in owners.values()), "'nodes' maps MXNet nodes to layer names", nm_file)
    quantized = "quantized" in name_map  # its nodes are MXNet's fused int8 subgraphs, owned by no layer
    for name in names:
        _expect(quantized or owners.get(name) in layers, f"MXNet node '{name}' belongs to no layer of the name map",
                nm_file)
    for key in ("blobs", "outputs"):
        _expect(all(isinstance(v, str) for v in name_map[key].values()), f"'{key}' maps blobs to names", nm_file)
    for vid, v in name_map.get("versions", {}).items():
        _expect(isinstance(v, dict) and isinstance(v.get("mxnet"), str) and isinstance(v.get("caffe_blob"), str)
                and _shape_list(v.get("shape")), f"version '{vid}' lacks mxnet/caffe_blob/shape", nm_file)


def _check_parameters(symbol, args, auxs, name_map, files):
    """Every parameter the symbol reads is there with the shape the symbol infers for it."""
    inputs = {v: tuple(name_map["input_shapes"][k]) for k, v in name_map["inputs"].items()
              if k in name_map["input_shapes"]}
    arguments, aux_names = symbol.list_arguments(), symbol.list_auxiliary_states()
    unknown_inputs = [n for n in inputs if n not in arguments]
    if unknown_inputs and len(unknown_inputs) == len(inputs):
        raise ModelError(f"the symbol reads none of the name map's inputs ({', '.join(inputs)})",
                         file=files["symbol.json"])
    given = {n: s for n, s in inputs.items() if n in arguments}
    given.update({n: tuple(v.shape) for n, v in args.items() if n in arguments})
    given.update({n: tuple(v.shape) for n, v in auxs.items() if n in aux_names})
    params_file = files["0000.params"]
    for name in arguments + aux_names:
        if name not in inputs and (args if name in arguments else auxs).get(name) is None:
            raise ModelError(f"has no value for parameter '{name}' of the symbol", file=params_file)
    try:
        arg_shapes, _, aux_shapes = symbol.infer_shape(**{k: v for k, v in given.items() if k in arguments})
    except Exception:  # a symbol that cannot run: `verify` reports that as a parity failure
        return
    for name, shape in list(zip(arguments, arg_shapes or ())) + list(zip(aux_names, aux_shapes or ())):
        have = args.get(name) if name in arguments else auxs.get(name)
        if name not in inputs and tuple(have.shape) != tuple(shape):
            raise ModelError(f"parameter '{name}' has shape {list(have.shape)}, the symbol needs {list(shape)}",
                             file=params_file)


def load(prefix):
    """A Conversion from PREFIX-symbol.json / -0000.params / -namemap.json (net is None).

    Nets without parameters (their params file holds an empty list) load too; a missing,
    truncated, foreign or mismatched file is a ModelError naming it.
    """
    mx = import_mxnet()
    files = files_of(prefix)
    missing = [f for f in files.values() if not os.path.isfile(f)]
    if missing:
        raise UsageError(f"{prefix}: missing {', '.join(missing)} (write them with `caffe2mx convert -o PREFIX`)")
    nm_file = files["namemap.json"]
    try:
        name_map = json.loads(Path(nm_file).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelError(f"not a caffe2mx name map ({_last_line(exc)})", file=nm_file) from None
    if not isinstance(name_map, dict) or not str(name_map.get("format", "")).startswith("caffe2mx-namemap/"):
        raise ModelError("not a caffe2mx name map (no caffe2mx-namemap format tag)", file=nm_file)
    _check_integrity(name_map, files)
    _check_name_map(name_map, nm_file)
    try:
        symbol = mx.sym.load(files["symbol.json"])
        # names MXNet hands back as text: undecodable bytes fail here, not in a later reader
        symbol.list_arguments(), symbol.list_auxiliary_states(), symbol.get_internals().list_outputs()
    except Exception as exc:  # MXNetError, JSON or UnicodeDecodeError from a corrupt file
        raise ModelError(f"not an MXNet symbol file ({_last_line(exc)})", file=files["symbol.json"]) from None
    _check_params_layout(files["0000.params"])
    try:
        saved = mx.nd.load(files["0000.params"])
    except Exception as exc:
        raise ModelError(f"not an MXNet params file ({_last_line(exc)})", file=files["0000.params"]) from None
    saved = saved if isinstance(saved, dict) else {}  # a net without parameters saves an empty list
    args = {k[4:]: v for k, v in saved.items() if k.startswith("arg:")}
    auxs = {k[4:]: v for k, v in saved.items() if k.startswith("aux:")}
    _check_parameters(symbol, args, auxs, name_map, files)
    _check_consistency(symbol, name_map, files)
    return Conversion(symbol=symbol, arg_params=args, aux_params=auxs, name_map=name_map, files=files)


def _last_line(exc):
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:200]
