"""Seeded, realistic weights for any net: what `caffe2mx init-weights` writes.

Convolutions are He-scaled with a per-layer gain drawn log-uniformly in [1/4, 4], so
activations change scale from layer to layer as in a trained net. BN statistics are
then calibrated on the activations they actually see (a float32 NumPy-reference
forward over a seeded input), with a deliberate per-channel mismatch: means sit away
from 0, inverse stds well away from 1, scales in [0.5, 1.5], shifts N(0, 0.2^2). The
net stays numerically alive to its last layer, so a parity check means something.
"""
import numpy as np

from .caffemodel import LayerBlobs, write_caffemodel
from .graph import build_graph
from .layers import handler_for
from .prototxt import read_prototxt
from .proto import caffe_pb
from .shapes import check_supported, infer_shapes

GAIN_RANGE = (0.25, 4.0)


def _loaded(prototxt, input_shapes):
    graph = build_graph(read_prototxt(prototxt), input_shapes=input_shapes)
    check_supported(graph)
    return graph, infer_shapes(graph, input_shapes)


def draw_blobs(graph, shapes, rng):
    """Independent draws per learnable layer, before calibration."""
    out = {}
    for node in graph.nodes:
        h = handler_for(node.type)
        need = h.blob_shapes(node, [shapes[b] for b in node.bottoms])
        if not need:
            continue
        blobs = [np.asarray(b, np.float32) for b in h.init_blobs(node, need, rng)]
        if node.type in ("Convolution", "Deconvolution", "InnerProduct"):
            blobs[0] = blobs[0] * np.float32(np.exp(rng.uniform(*np.log(GAIN_RANGE))))
        out[node.name] = blobs
    return out


def _calibrated_bn(node, x, blobs, rng):
    axes = (0,) + tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, dtype=np.float64)
    std = np.sqrt(x.var(axis=axes, dtype=np.float64) + 1e-5)
    c = mean.size
    mean = mean + std * rng.normal(0.0, 0.25, c)
    mismatch = np.exp(rng.uniform(np.log(0.5), np.log(2.0), c))
    if node.type == "BN":
        shape = blobs[0].shape
        return [blobs[0], blobs[1], mean.reshape(shape).astype(np.float32),
                (mismatch / std).reshape(shape).astype(np.float32)]
    var = (std / mismatch) ** 2
    factor = blobs[2] if len(blobs) > 2 else np.ones(1, np.float32)
    return [(mean * factor[0]).astype(np.float32), (var * factor[0]).astype(np.float32), factor]


def calibrate(graph, shapes, weights, rng):
    """Re-draw BN/BatchNorm statistics from the activations of a seeded input."""
    from ..verify.numpy_ref.call import LayerCall
    from ..verify.numpy_ref.registry import handler as ref_handler

    values = {k: rng.uniform(-1, 1, shapes[k]).astype(np.float32) for k in graph.inputs}
    feeds = dict(values)
    for node in graph.nodes:
        ins = [values[b] for b in node.bottoms]
        if node.type in ("BN", "BatchNorm") and node.name in weights:
            weights[node.name] = _calibrated_bn(node, ins[0], weights[node.name], rng)
        call = LayerCall(node=node, bottoms=ins, blobs=tuple(weights.get(node.name, ())), dtype=np.float32,
                         options={"bn_blob3": "inv_std"}, feeds=feeds, file=graph.file)
        with np.errstate(over="ignore", invalid="ignore"):
            outs = ref_handler(node.type)(call)
        for t, o in zip(node.tops, outs):
            values[t] = np.asarray(o, np.float32)
        for b in set(node.bottoms) - {t for n in graph.nodes[node.index + 1:] for t in n.bottoms}:
            values.pop(b, None)
    return weights


def seeded_weights(prototxt, seed=0, input_shapes=None, calibrate_bn=True):
    """{layer name: LayerBlobs} of seeded weights, as read_caffemodel would return them."""
    return _seeded(*_loaded(prototxt, input_shapes), seed, calibrate_bn)


def _seeded(graph, shapes, seed, calibrate_bn):
    rng = np.random.default_rng(seed)
    weights = draw_blobs(graph, shapes, rng)
    if calibrate_bn and any(n.type in ("BN", "BatchNorm") for n in graph.nodes):
        weights = calibrate(graph, shapes, weights, rng)
    types = {n.name: n.type for n in graph.nodes}
    return {name: LayerBlobs(name, types[name], tuple(b), (False,) * len(b)) for name, b in weights.items()}


def write_init_weights(prototxt, output, seed=0, input_shapes=None, calibrate_bn=True):
    """Write a standard caffemodel (every layer with phase TEST, learnable ones with blobs)."""
    graph, shapes = _loaded(prototxt, input_shapes)
    weights = _seeded(graph, shapes, seed, calibrate_bn)
    layers = []
    for node in graph.nodes:
        lp = caffe_pb.LayerParameter()
        lp.CopyFrom(node.param)
        lp.ClearField("include")
        lp.ClearField("exclude")
        lp.phase = caffe_pb.TEST
        blobs = weights[node.name].blobs if node.name in weights else ()
        layers.append((lp, blobs))
    write_caffemodel(output, graph.name or "net", layers)
    return weights
