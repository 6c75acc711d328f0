"""Your own layer types without editing caffe2mx: plug-in files, installed plug-in packages,
and a fork's parameter messages.

A plug-in is Python code that registers, for each layer type it adds, a converter handler
(`caffe2mx.converter.layers.LayerHandler` subclass with the `register` decorator: shape,
blob names, MXNet emission) and its NumPy reference (`caffe2mx.verify.numpy_ref.register`),
and, only if it emits an MXNet operator caffe2mx does not translate yet, that operator's
ONNX translator (`caffe2mx.converter.onnx_export.registry.translates`). It is loaded from

* a file the user names: `--plugin my_layers.py` on any command that reads a net, or
  `caffe2mx.load_plugin("my_layers.py")`;
* an installed package's entry point in the group `caffe2mx.layers` (its value names a
  module, imported before the first net is read).

Only those are ever imported: nothing a model file names is (a `Python` layer's module
never is). A plug-in passes the registries' own rules: a type registered twice (by two
plug-ins, or a plug-in and caffe2mx) is an error naming both; every type it adds has both
a handler and a NumPy reference; no `_`-types (internal to caffe2mx's passes); every MXNet
operator a handler declares in `mx_ops` has an ONNX translator. A plug-in that breaks a
rule, or raises while it is imported, is one UsageError naming the file, and everything it
had registered is taken back. Loading the same file twice is a no-op.

`--proto my_caffe.proto` (`load_proto`) adds a fork's parameter messages to the schema, so
that `my_layer_param { ... }` in a prototxt parses and a handler reads
`node.param.my_layer_param`; see `caffe2mx.converter.proto.user_schema`.
"""
import hashlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from .errors import Caffe2MXError, UsageError
from .layers import base as _layers
from .onnx_export import registry as _onnx

ENTRY_POINT_GROUP = "caffe2mx.layers"

#: {name: dict} registries keyed by Caffe layer type that must gain exactly the converter's
#: new types when a plug-in loads (the NumPy reference adds itself: converter/ cannot import it)
_LAYER_REGISTRIES = {}
_LOADED = {}  # resolved path or "entry point NAME" -> Plugin
_INSTALLED_LOADED = []
_PROTOS = []  # --proto files merged into the schema, in order
_ACTIVE = []  # the registries' contents before the plug-in being loaded now, per registry name


@dataclass(frozen=True)
class Plugin:
    """What one plug-in added: its source (file or entry point) and the layer types."""

    source: str
    module: str
    types: tuple


def add_layer_registry(name, mapping):
    """Tie a registry keyed by layer type (e.g. the NumPy reference's) to plug-in loading:
    a plug-in must add to it exactly the types it adds to the converter, and a failed load
    takes back what it added there too."""
    _LAYER_REGISTRIES[name] = mapping
    if _ACTIVE:  # first imported by the plug-in being loaded: what it holds now is the baseline
        _ACTIVE[-1].setdefault(name, dict(mapping))


def loaded_plugins():
    return list(_LOADED.values())


def load_plugin(path):
    """Import a plug-in file once and check what it registered; returns a Plugin."""
    p = Path(path)
    if p.suffix != ".py":
        raise UsageError(f"--plugin {path}: a plug-in is a Python file (.py); a fork's .proto goes to --proto")
    if not p.is_file():
        raise UsageError(f"--plugin {path}: no such file")
    key = str(p.resolve())
    if key in _LOADED:
        return _LOADED[key]
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    module_name = f"caffe2mx_plugin_{_identifier(p.stem)}_{digest}"

    def run():
        spec = importlib.util.spec_from_file_location(module_name, p)
        module = importlib.util.module_from_spec(spec)
        module.__caffe2mx_plugin__ = True
        sys.modules[module_name] = module
        spec.loader.exec_module(module)

    plugin = _transaction(f"plug-in {path}", str(p), module_name, run)
    _LOADED[key] = plugin
    return plugin


def load_installed():
    """Import every module installed packages expose in the `caffe2mx.layers` entry-point group
    (once per process). Returns the Plugins loaded by this call."""
    if _INSTALLED_LOADED:
        return []
    _INSTALLED_LOADED.append(True)
    from importlib import metadata
    eps = metadata.entry_points()
    group = eps.select(group=ENTRY_POINT_GROUP) if hasattr(eps, "select") else eps.get(ENTRY_POINT_GROUP, ())
    out = []
    for ep in sorted(group, key=lambda e: e.name):
        source = f"installed plug-in '{ep.name}' ({ep.value})"
        if source in _LOADED:
            continue
        dist = getattr(getattr(ep, "dist", None), "name", None)
        where = f"{source}" + (f" of package {dist}" if dist else "")
        module = ep.value.split(":")[0].strip()
        plugin = _transaction(where, None, module, ep.load)
        _LOADED[source] = plugin
        out.append(plugin)
    return out


def load_proto(path):
    """Extend the schema with a fork's parameter messages (.proto, or a protoc descriptor set);
    returns the notes on what was renumbered. See caffe2mx.converter.proto.user_schema."""
    from .proto import user_schema
    notes = user_schema.extend_schema(path)
    _PROTOS.append(str(path))
    return notes


def extensions_in_use():
    """What the name map records of the plug-ins and .proto files loaded when a net was
    converted (for a reader of the files; nothing is ever loaded from this record)."""
    return {"plugins": [p.source for p in _LOADED.values()], "protos": list(_PROTOS)}


def _identifier(text):
    return "".join(c if c.isalnum() else "_" for c in text) or "plugin"


def _registries():
    regs = {"converter": _layers._HANDLERS, "ONNX translators": _onnx._TRANSLATORS}
    regs.update(_LAYER_REGISTRIES)
    return regs


def _transaction(where, path, module_name, run):
    """Run the import; check the registries' rules; on any failure restore every registry and
    raise one UsageError naming the plug-in (and the line in it, where the plug-in raised)."""
    _onnx._load_translators()  # built-in translators first, so a clash is reported against the plug-in
    before = {name: dict(reg) for name, reg in _registries().items()}
    _ACTIVE.append(before)
    try:
        run()
        added = _check(where, _registries(), before)
    except BaseException as exc:
        for name, reg in _registries().items():
            reg.clear()
            reg.update(before.get(name, {}))
        sys.modules.pop(module_name, None)
        if isinstance(exc, Caffe2MXError):
            raise
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise UsageError(f"{where}{_raised_at(exc, path)}: {type(exc).__name__}: {exc}") from None
    finally:
        _ACTIVE.pop()
    return Plugin(source=path or where, module=module_name, types=tuple(sorted(added)))


def _raised_at(exc, path):
    """`:LINE` of the deepest frame in the plug-in file, where it raised."""
    if path is None:
        return ""
    target = str(Path(path).resolve())
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename and Path(frame.filename).resolve().as_posix() == Path(target).as_posix():
            line = frame.lineno
    return f":{line}" if line else ""


def _check(where, regs, before):
    added = {name: set(reg) - set(before[name]) for name, reg in regs.items()}
    types = added["converter"]
    problems = []
    internal = sorted(t for t in types if _layers.is_internal(t))
    if internal:
        problems.append(f"registers internal type(s) {', '.join(internal)} (a `_` type can only come from "
                        f"caffe2mx's own graph passes)")
    for name in _LAYER_REGISTRIES:
        missing, extra = sorted(types - added[name]), sorted(added[name] - types)
        if missing:
            problems.append(f"registers no {name} for {', '.join(missing)} (every layer type needs one)")
        if extra:
            problems.append(f"registers a {name} for {', '.join(extra)} but no converter handler")
    translated = set(regs["ONNX translators"])
    for t in sorted(types - set(internal)):
        h = _layers.handler_for(t)
        if not h.mx_ops:
            problems.append(f"handler of '{t}' declares no `mx_ops` (the MXNet operators its emit() creates)")
        untranslated = sorted(set(h.mx_ops) - translated)
        if untranslated:
            problems.append(f"handler of '{t}' emits MXNet op(s) {', '.join(untranslated)} that have no ONNX "
                            f"translator: register one with caffe2mx.converter.onnx_export.registry.translates")
    if problems:
        raise UsageError(f"{where}: " + "; ".join(problems))
    return types


def blame(exc):
    """`plug-in FILE:LINE` when an exception was raised inside a loaded plug-in's code (the CLI
    then reports the plug-in, not caffe2mx, as the cause), else None."""
    files = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and (getattr(module, "__caffe2mx_plugin__", False) or name in _installed_modules()):
            files[str(Path(path).resolve())] = path
    hit = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename and str(Path(frame.filename).resolve()) in files:
            hit = f"plug-in {files[str(Path(frame.filename).resolve())]}:{frame.lineno}"
    return hit


def _installed_modules():
    return {p.module for p in _LOADED.values() if not p.module.startswith("caffe2mx_plugin_")}
