"""Run a Graph's forward pass with the registered NumPy layers."""
from dataclasses import dataclass, field

import numpy as np

from caffe2mx.converter.errors import ModelError

from .call import LayerCall
from .norm import BN_BLOB3
from .registry import UnsupportedLayerType, handler, supported_types
from .splits import split_blobs


@dataclass
class Result:
    """`blobs`: Caffe name -> value after the forward pass (last in-place write wins);
    `versions`: blob id -> value, every version; `splits`: Caffe's automatic split blob
    name -> value (filled when forward(..., splits=True)), also merged into `blobs`."""

    blobs: dict
    versions: dict
    splits: dict = field(default_factory=dict)


def check_supported(graph):
    """One error naming every layer whose type has no NumPy implementation."""
    known = set(supported_types())
    bad = [n for n in graph.nodes if n.type not in known]
    if bad:
        where = [f"{graph.file}:{n.line}: layer '{n.name}' ({n.type})" for n in bad]
        raise UnsupportedLayerType(sorted({n.type for n in bad}), where)


def _layer_weights(node, weights):
    """(blobs, legacy flags) for a node from a caffemodel dict, else from the node itself."""
    if weights is None:
        return tuple(node.blobs), None
    entry = weights.get(node.name)
    if entry is None:
        return (), None
    if hasattr(entry, "blobs"):
        return tuple(entry.blobs), tuple(getattr(entry, "legacy", ()) or ()) or None
    return tuple(entry), None


def _feeds(graph, inputs, dtype):
    missing = [name for name in graph.inputs if name not in inputs]
    unknown = [name for name in inputs if name not in graph.inputs]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"no value for net input(s) {missing}")
        if unknown:
            parts.append(f"{unknown} are not net inputs")
        raise ModelError("; ".join(parts) + f" (the net's inputs: {list(graph.inputs)})", file=graph.file)
    feeds = {}
    for name in graph.inputs:
        arr = np.asarray(inputs[name])
        if arr.ndim != len(graph.inputs[name]):
            raise ModelError(f"input '{name}' has shape {list(arr.shape)}, the net declares "
                             f"{list(graph.inputs[name])}", file=graph.file)
        feeds[name] = arr.astype(dtype, copy=True)
    return feeds


def feeds_for(graph, inputs, dtype=np.float64):
    """The net inputs as the Input layers read them (checked against the graph), in `dtype`."""
    return _feeds(graph, inputs, np.dtype(dtype).type)


def run_node(node, bottoms, *, dtype=np.float64, options=None, feeds=None, file=None, blobs=None, legacy=None):
    """One layer's NumPy forward: its tops (arrays in `dtype`) from its bottoms."""
    dtype = np.dtype(dtype).type
    call = LayerCall(node=node, bottoms=list(bottoms), blobs=tuple(node.blobs) if blobs is None else blobs,
                     legacy=legacy, dtype=dtype, options=dict(options or {"bn_blob3": "inv_std"}),
                     feeds=feeds or {}, file=file)
    with np.errstate(over="ignore"):
        outs = handler(node.type)(call)
    if len(outs) != len(node.tops):
        raise call.error(f"produced {len(outs)} tops, the layer declares {len(node.tops)}")
    return [np.asarray(out).astype(dtype, copy=False) for out in outs]


def run_nodes(nodes, values, **kwargs):
    """Several layers in order from `values` ({version: array}, the first bottoms): every
    version they produce, added to a copy of `values`. kwargs as for run_node."""
    values = dict(values)
    for node in nodes:
        for top, out in zip(node.tops, run_node(node, [values[b] for b in node.bottoms], **kwargs)):
            values[top] = out
    return values


def forward(graph, inputs, weights=None, dtype=np.float64, *, bn_blob3="inv_std", splits=False):
    """Caffe TEST-phase forward of `graph` on `inputs` ({input name: array}).

    weights: {layer name: LayerBlobs or sequence of arrays} (read_caffemodel's result),
    or None to use the blobs bound on the graph's nodes. bn_blob3: "inv_std" (the fork's
    BN, default) or "variance". splits: also return Caffe's automatic split blobs.
    """
    dtype = np.dtype(dtype).type
    if dtype not in (np.float64, np.float32):
        raise ValueError(f"dtype must be float64 or float32, got {np.dtype(dtype).name}")
    if bn_blob3 not in BN_BLOB3:
        raise ValueError(f"bn_blob3 must be one of {BN_BLOB3}, got {bn_blob3!r}")
    check_supported(graph)
    options = {"bn_blob3": bn_blob3}
    feeds = _feeds(graph, inputs, dtype)
    versions = {}
    for node in tuple(graph.input_nodes()) + tuple(graph.nodes):
        blobs, legacy = _layer_weights(node, weights)
        outs = run_node(node, [versions[b] for b in node.bottoms], dtype=dtype, options=options, feeds=feeds,
                        file=graph.file, blobs=blobs, legacy=legacy)
        for top, out in zip(node.tops, outs):
            versions[top] = out
    blobs = {name: versions[vid] for name, vid in graph.final_version.items()}
    extra = split_blobs(graph, versions) if splits else {}
    blobs.update(extra)
    return Result(blobs=blobs, versions=versions, splits=extra)
