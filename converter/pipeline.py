"""prototxt (+ weights) -> checked, shaped graph -> weighted graph -> MXNet symbol and params.

The front end runs once per command: `read_net` parses, checks and shapes a net, and the
resulting `Net` is what seeding, inspect, visualize, verify and the Gluon bridge take.
"""
from dataclasses import dataclass

import numpy as np

from .caffemodel import read_caffemodel
from .emit import Emitter, _mx
from .errors import UsageError
from .graph import build_graph
from .layers.norm import BN_BLOB3_MODES
from .model_files import Conversion, check_output_prefix, load, output_prefix, save  # noqa: F401
from .passes import fuse_batchnorm_scale
from .plugins import extensions_in_use, load_installed
from .prototxt import read_prototxt
from .shapes import check_supported, infer_shapes
from .weights import bind_weights


@dataclass(frozen=True)
class Net:
    """A parsed, checked and shaped Caffe net (no weights yet)."""

    graph: object
    shapes: dict

    @property
    def file(self):
        return self.graph.file


@dataclass(frozen=True)
class LoadedNet:
    """A Net whose learnable layers carry their blobs (graph before emission passes)."""

    graph: object
    shapes: dict
    caffemodel: str = None

    @property
    def file(self):
        return self.graph.file


def read_net(prototxt, input_shapes=None, progress=None):
    """Parse, validate and shape a net: the front end, run once per command."""
    say = progress or (lambda msg: None)
    load_installed()  # installed packages' plug-ins (entry points), once per process
    say(f"reading {prototxt}")
    graph = build_graph(read_prototxt(prototxt), input_shapes=input_shapes)
    check_supported(graph)
    return Net(graph=graph, shapes=infer_shapes(graph, input_shapes))


def bind(net, weights, caffemodel=None):
    """The net with `weights` ({layer: LayerBlobs}, as read_caffemodel returns) attached."""
    path = str(caffemodel) if caffemodel else None
    graph = bind_weights(net.graph, net.shapes, weights, caffemodel_path=path)
    return LoadedNet(graph=graph, shapes=net.shapes, caffemodel=path)


def load_net(prototxt, caffemodel=None, *, weights=None, input_shapes=None, progress=None):
    """read_net + bind in one call; `weights` may be given instead of `caffemodel`."""
    net = prototxt if isinstance(prototxt, Net) else read_net(prototxt, input_shapes, progress)
    if caffemodel is not None:
        (progress or (lambda msg: None))(f"reading {caffemodel}")
        weights = read_caffemodel(caffemodel, progress=progress)
    return bind(net, weights, caffemodel)


def convert_net(net, *, bn_blob3="inv_std", progress=None, weights=None, caffemodel=None, keep_net=True):
    """Emit a LoadedNet as an MXNet symbol, parameters and name map.

    Given a Net and `weights` ({layer: LayerBlobs}) instead, the weights are bound here; with
    `keep_net` False this empties `weights` and lets go of the weighted graph, so that each
    NumPy blob is freed as soon as MXNet has its copy (the weights are in memory once, not
    twice) and the Conversion's `.net` is None.
    """
    if bn_blob3 not in BN_BLOB3_MODES:
        raise UsageError(f"bn_blob3 must be one of {', '.join(BN_BLOB3_MODES)}, not {bn_blob3!r}")
    say = progress or (lambda msg: None)
    if weights is not None:
        net = bind(net, weights, caffemodel)
        if not keep_net:
            weights.clear()
    graph = fuse_batchnorm_scale(net.graph)
    say(f"emitting {len(graph.nodes)} layers")
    em = Emitter(graph, net.shapes, options={"bn_blob3": bn_blob3})
    symbol, args, auxs, name_map = em.run()
    name_map["caffemodel"] = net.caffemodel
    extensions = extensions_in_use()
    if any(extensions.values()):
        name_map["extensions"] = extensions
    kept = net if keep_net else None
    em = graph = net = None  # noqa: F841 - from here the parameter dicts hold the only references
    nd = _mx().nd
    return Conversion(symbol=symbol, arg_params=_ndarrays(nd, args), aux_params=_ndarrays(nd, auxs),
                      name_map=name_map, net=kept)


def _ndarrays(nd, params):
    """MXNet copies of the NumPy parameters, made one at a time, each NumPy array released from
    `params` as its copy is made.

    (Sharing the memory instead, with `nd.from_numpy(zero_copy=True)`, is not safe: MXNet's
    oneDNN backend reorders convolution weights in place, under any NumPy view of them.)"""
    out = {}
    for name in list(params):
        value = np.asarray(params.pop(name), np.float32)
        if value.ndim == 0:  # nd.empty(()) would be shape (1,)
            out[name] = nd.array(value, dtype="float32")
            continue
        # what nd.array does, less its per-call indexing (Attention-92's 885 arrays: 0.2 s)
        out[name] = nd.empty(value.shape, dtype="float32")
        out[name]._sync_copyfrom(np.ascontiguousarray(value))
    return out
