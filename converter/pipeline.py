"""prototxt (+ caffemodel) -> checked graph with shapes and weights -> MXNet symbol and params."""
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .caffemodel import read_caffemodel
from .emit import Emitter, _mx
from .errors import UsageError
from .graph import build_graph
from .layers.batchnorm import BN_BLOB3_MODES
from .passes import fuse_batchnorm_scale
from .prototxt import read_prototxt
from .shapes import check_supported, infer_shapes
from .weights import bind_weights


@dataclass
class LoadedNet:
    graph: object  # weights bound, before emission passes
    shapes: dict
    caffemodel: str = None


@dataclass
class Conversion:
    symbol: object
    arg_params: dict  # name -> mx.nd.NDArray
    aux_params: dict
    name_map: dict
    net: LoadedNet


def load_net(prototxt, caffemodel=None, *, weights=None, input_shapes=None, progress=None):
    """Parse, validate and shape a net, and attach its weights.

    `weights` may be given instead of `caffemodel`: a {layer: LayerBlobs}-like dict.
    """
    say = progress or (lambda msg: None)
    say(f"reading {prototxt}")
    graph = build_graph(read_prototxt(prototxt), input_shapes=input_shapes)
    check_supported(graph)
    shapes = infer_shapes(graph, input_shapes)
    if caffemodel is not None:
        say(f"reading {caffemodel}")
        weights = read_caffemodel(caffemodel, progress=say)
    graph = bind_weights(graph, shapes, weights, caffemodel_path=str(caffemodel) if caffemodel else None)
    return LoadedNet(graph=graph, shapes=shapes, caffemodel=str(caffemodel) if caffemodel else None)


def convert_net(net, *, bn_blob3="inv_std", progress=None):
    if bn_blob3 not in BN_BLOB3_MODES:
        raise UsageError(f"bn_blob3 must be one of {', '.join(BN_BLOB3_MODES)}, not {bn_blob3!r}")
    say = progress or (lambda msg: None)
    graph = fuse_batchnorm_scale(net.graph)
    say(f"emitting {len(graph.nodes)} layers")
    em = Emitter(graph, net.shapes, options={"bn_blob3": bn_blob3})
    symbol, args, auxs, name_map = em.run()
    name_map["caffemodel"] = net.caffemodel
    nd = _mx().nd
    return Conversion(symbol=symbol, arg_params={k: nd.array(v, dtype="float32") for k, v in args.items()},
                      aux_params={k: nd.array(v, dtype="float32") for k, v in auxs.items()},
                      name_map=name_map, net=net)


def check_output_prefix(prefix, create_parent=False):
    """Fail before any work if PREFIX-* cannot be written; returns the output directory."""
    prefix = Path(prefix)
    out_dir = prefix.parent if str(prefix.parent) else Path(".")
    if create_parent and not out_dir.exists():
        return out_dir
    if not out_dir.is_dir():
        raise UsageError(f"{out_dir}: output directory does not exist")
    if not os.access(out_dir, os.W_OK):
        raise UsageError(f"{out_dir}: output directory is not writable")
    return out_dir


def save(conv, prefix, create_parent=False):
    """Write PREFIX-symbol.json, PREFIX-0000.params and PREFIX-namemap.json, all or nothing."""
    prefix = Path(prefix)
    out_dir = check_output_prefix(prefix, create_parent)
    base = prefix.name
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{base}.", dir=str(out_dir)))
    except OSError as exc:
        raise UsageError(f"{out_dir}: cannot write output there ({exc.strerror})") from None
    files = {f"{base}-symbol.json": None, f"{base}-0000.params": None, f"{base}-namemap.json": None}
    try:
        conv.symbol.save(str(staging / f"{base}-symbol.json"))
        params = {f"arg:{k}": v for k, v in conv.arg_params.items()}
        params.update({f"aux:{k}": v for k, v in conv.aux_params.items()})
        _mx().nd.save(str(staging / f"{base}-0000.params"), params)
        (staging / f"{base}-namemap.json").write_text(json.dumps(conv.name_map, indent=1))
        for name in files:
            os.replace(staging / name, out_dir / name)
    except OSError as exc:
        for name in files:
            (out_dir / name).unlink(missing_ok=True)
        raise UsageError(f"{out_dir}: cannot write output there ({exc.strerror})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {name: str(out_dir / name) for name in files}
