"""Seeded, realistic weights for any net: what `caffe2mx init-weights` writes and what
`convert` uses when no caffemodel is given.

Blobs come from each layer handler's `init_blobs`; layers marked `init_gain` (convolutions,
inner products) are scaled by a per-layer gain drawn log-uniformly in [1/4, 4], so
activations change scale from layer to layer as in a trained net. Layers that keep
statistics (BN, BatchNorm) are then calibrated by their handler on the activations they
actually see (a float32 NumPy-reference forward over a seeded input), with a deliberate
per-channel mismatch. The net stays numerically alive to its last layer, so a parity
check means something.

This lives above both `converter` (handlers, caffemodel writer) and `verify` (the NumPy
reference used for calibration), which must not import each other upwards.
"""
import numpy as np

from .converter.caffemodel import LayerBlobs, write_caffemodel
from .converter.layers import LayerHandler, handler_for
from .converter.proto import caffe_pb

GAIN_RANGE = (0.25, 4.0)


def draw_blobs(graph, shapes, rng):
    """Independent draws per learnable layer, before calibration."""
    out = {}
    for node in graph.nodes:
        h = handler_for(node.type)
        need = h.blob_shapes(node, [shapes[b] for b in node.bottoms])
        if not need:
            continue
        blobs = [np.asarray(b, np.float32) for b in h.init_blobs(node, need, rng)]
        if h.init_gain:
            blobs[0] = blobs[0] * np.float32(np.exp(rng.uniform(*np.log(GAIN_RANGE))))
        out[node.name] = blobs
    return out


def calibrate(graph, shapes, weights, rng):
    """Let each layer that keeps statistics redraw them from the activations it sees."""
    from .verify.numpy_ref.call import LayerCall
    from .verify.numpy_ref.registry import handler as ref_handler

    values = {k: rng.uniform(-1, 1, shapes[k]).astype(np.float32) for k in graph.inputs}
    feeds = dict(values)
    last_read = {b: i for i, n in enumerate(graph.nodes) for b in n.bottoms}
    for i, node in enumerate(graph.nodes):
        ins = [values[b] for b in node.bottoms]
        if node.name in weights:
            redrawn = handler_for(node.type).calibrate(node, ins[0] if ins else None, weights[node.name], rng)
            if redrawn is not None:
                weights[node.name] = redrawn
        call = LayerCall(node=node, bottoms=ins, blobs=tuple(weights.get(node.name, ())), dtype=np.float32,
                         options={"bn_blob3": "inv_std"}, feeds=feeds, file=graph.file)
        with np.errstate(over="ignore", invalid="ignore"):
            outs = ref_handler(node.type)(call)
        for t, o in zip(node.tops, outs):
            values[t] = np.asarray(o, np.float32)
        for b in set(node.bottoms):
            if last_read.get(b) == i:
                values.pop(b, None)
    return weights


def _needs_calibration(graph):
    return any(type(handler_for(n.type)).calibrate is not LayerHandler.calibrate for n in graph.nodes)


def seeded_weights(net, seed=0, calibrate_bn=True):
    """{layer name: LayerBlobs} of seeded weights for a `Net` (pipeline.read_net), as
    read_caffemodel would return them."""
    graph, shapes = net.graph, net.shapes
    rng = np.random.default_rng(seed)
    weights = draw_blobs(graph, shapes, rng)
    if calibrate_bn and _needs_calibration(graph):
        weights = calibrate(graph, shapes, weights, rng)
    types = {n.name: n.type for n in graph.nodes}
    return {name: LayerBlobs(name, types[name], tuple(b), (False,) * len(b)) for name, b in weights.items()}


def write_init_weights(net, output, seed=0, calibrate_bn=True, force=True, inputs=()):
    """Write a standard caffemodel (every layer with phase TEST, learnable ones with blobs);
    an existing file is replaced only with `force`, and never one of `inputs`."""
    weights = seeded_weights(net, seed, calibrate_bn)
    layers = []
    for node in net.graph.nodes:
        lp = caffe_pb.LayerParameter()
        lp.CopyFrom(node.param)
        lp.ClearField("include")
        lp.ClearField("exclude")
        lp.phase = caffe_pb.TEST
        blobs = weights[node.name].blobs if node.name in weights else ()
        layers.append((lp, blobs))
    write_caffemodel(output, net.graph.name or "net", layers, force=force, inputs=inputs)
    return weights
