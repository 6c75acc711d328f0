"""Load Caffe weights into the hand-written Gluon models, by structure.

Each Gluon Conv2D / BatchNorm / Dense that mirrors a Caffe layer carries that layer's name
(`caffe_name`, set where the block is built from the same structural naming as the
prototxts). Loading pairs those names with the Caffe layers one to one, checks types and
shapes, and fails once, listing every unmatched layer on both sides and every shape or
type mismatch. Nothing is matched by guessing names or by parameter order.

The fork's `BN` (blobs scale, shift, mean, inverse std; y = (x - mean) * inv_std * scale
+ shift) is mapped exactly onto Gluon BatchNorm with the converter's `fork_bn_to_mxnet`:
var = 1/inv_std^2 - eps in float64, or, where that is negative, var = 0 and gamma =
scale * inv_std * sqrt(eps).
"""
import numpy as np
from mxnet.gluon import nn

from caffe2mx.converter.caffemodel import read_caffemodel
from caffe2mx.converter.layers import handler_for
from caffe2mx.converter.layers.norm import fork_bn_to_mxnet
from caffe2mx.converter.pipeline import read_net

from .blocks.residual import caffe_layers

# Gluon block class -> Caffe layer types it can take weights from
COMPATIBLE = {
    nn.Conv2D: ("Convolution",),
    nn.BatchNorm: ("BN",),
    nn.Dense: ("InnerProduct",),
}
_LIST_LIMIT = 40


class CaffeBridgeError(ValueError):
    """The Gluon model and the Caffe net do not correspond; the message lists every problem."""

    def __init__(self, problems):
        self.problems = problems
        lines = []
        for title, items in problems:
            lines.append(f"{title} ({len(items)}):")
            lines += [f"  {i}" for i in items[:_LIST_LIMIT]]
            if len(items) > _LIST_LIMIT:
                lines.append(f"  ... and {len(items) - _LIST_LIMIT} more")
        super().__init__("Caffe weights do not fit the Gluon model:\n" + "\n".join(lines))


def _caffe_blobs(caffemodel):
    """{layer name: (type, [arrays])} for every layer with blobs; `caffemodel` is a path or
    read_caffemodel()'s dict (e.g. the weights a conversion already holds)."""
    out = {}
    entries = caffemodel if isinstance(caffemodel, dict) else read_caffemodel(caffemodel)
    for name, entry in entries.items():
        if isinstance(entry, (list, tuple)):
            out[name] = (None, [np.asarray(b) for b in entry])
        else:
            out[name] = (entry.type, [np.asarray(b) for b in entry.blobs])
    return out


def _weighted_layers(net):
    """{layer name: type} of the net's layers that hold weights in a caffemodel.

    `net` is a prototxt path or a Net/LoadedNet already read: the converter's own graph,
    so V1 nets and include/exclude rules count exactly as the converter sees them, and
    which types have weights is the layer handlers' knowledge, not a list here."""
    if not hasattr(net, "graph"):
        net = read_net(net)
    return {n.name: n.type for n in net.graph.nodes
            if handler_for(n.type).blob_shapes(n, [net.shapes[b] for b in n.bottoms])}


def _block_kind(block):
    for cls in COMPATIBLE:
        if isinstance(block, cls):
            return cls
    return None


def _fit(blob, shape):
    """`blob` reshaped to `shape` if they agree up to leading singleton axes, else None."""
    src = tuple(blob.shape)
    while len(src) > len(shape) and src[0] == 1:
        src = src[1:]
    if src == tuple(shape) or (blob.size == int(np.prod(shape)) and
                               [d for d in src if d != 1] == [d for d in shape if d != 1]):
        return blob.reshape(shape)
    return None


def _plan(name, block, ctype, blobs, blob3_mode):
    """[(Parameter, array)] for one layer, or a list of problems."""
    kind = _block_kind(block)
    if kind is None:
        return [], [f"{name}: Gluon {type(block).__name__} has no Caffe mapping"]
    if ctype is not None and ctype not in COMPATIBLE[kind]:
        return [], [f"{name}: Gluon {kind.__name__} cannot take a Caffe {ctype} layer"]
    if kind is nn.BatchNorm:
        if len(blobs) != 4:
            return [], [f"{name}: BN needs 4 blobs (scale, shift, mean, inv std), has {len(blobs)}"]
        channels = block.gamma.shape[0]
        if any(b.size != channels for b in blobs):
            sizes = [b.size for b in blobs]
            return [], [f"{name}: BN blobs have {sizes} values, Gluon BatchNorm has {channels} channels"]
        eps = float(block._kwargs["eps"])
        gamma, beta, mean, var, _ = fork_bn_to_mxnet(*blobs, eps=eps, blob3_mode=blob3_mode)
        if block.gamma.grad_req == "null" and not np.all(gamma == 1):
            return [], [f"{name}: Gluon BatchNorm has a fixed gamma but the Caffe scale is not 1"]
        pairs = [(block.gamma, gamma), (block.beta, beta), (block.running_mean, mean),
                 (block.running_var, var)]
        return pairs, []
    wanted = [block.weight] + ([block.bias] if block.bias is not None else [])
    if len(blobs) != len(wanted):
        return [], [f"{name}: Caffe has {len(blobs)} blob(s), Gluon {kind.__name__} has "
                    f"{len(wanted)} parameter(s) (bias {'on' if block.bias is not None else 'off'})"]
    pairs, problems = [], []
    for param, blob in zip(wanted, blobs):
        fitted = _fit(blob, param.shape)
        if fitted is None:
            problems.append(f"{name}: blob shape {tuple(blob.shape)} does not fit "
                            f"{param.name} {tuple(param.shape)}")
        else:
            pairs.append((param, fitted))
    return pairs, problems


def load_caffe(model, prototxt, caffemodel, blob3_mode="inv_std"):
    """Load the weights of `caffemodel` (for the net of `prototxt`) into the Gluon `model`.

    `prototxt` is a path or a Net read once by the caller; it may be None: the caffemodel's
    own layers are then the reference. A caffemodel layer that the prototxt does not have is
    an error too (it means another net).
    `blob3_mode` is the meaning of the fork BN's fourth blob: 'inv_std' (the Residual
    Attention Network fork) or 'variance' (other forks). Returns {caffe name: block}.
    Raises CaffeBridgeError listing unmatched layers and parameters on both sides and
    every shape/type mismatch; nothing is written unless everything matches.
    """
    blocks = {}
    duplicates = []
    for name, block in caffe_layers(model):
        if name in blocks and blocks[name] is not block:
            duplicates.append(name)
        blocks[name] = block
    for param in model.collect_params().values():
        if param._data is None and not param._deferred_init:
            param.initialize()
    caffe = _caffe_blobs(caffemodel)
    expected = _weighted_layers(prototxt) if prototxt is not None else {
        n: t for n, (t, _) in caffe.items()}

    covered = {p.name for b in blocks.values() for p in b.collect_params().values()}
    loose = sorted(p.name for p in model.collect_params().values() if p.name not in covered)
    problems = [
        ("Gluon layers named more than once", sorted(set(duplicates))),
        ("Gluon layers without a Caffe layer", sorted(set(blocks) - set(expected))),
        ("Gluon parameters that no Caffe layer covers", loose),
        ("Caffe layers without a Gluon layer", sorted(set(expected) - set(blocks))),
        ("Caffe layers missing from the caffemodel",
         sorted(n for n in expected if n in blocks and n not in caffe)),
        ("caffemodel layers the prototxt does not have", sorted(set(caffe) - set(expected))),
    ]
    plan, mismatches = [], []
    for name, block in blocks.items():
        if name not in expected or name not in caffe:
            continue
        ctype = caffe[name][0] or expected.get(name)
        pairs, bad = _plan(name, block, ctype, caffe[name][1], blob3_mode)
        plan += pairs
        mismatches += bad
    problems.append(("type or shape mismatches", mismatches))
    problems = [(title, items) for title, items in problems if items]
    if problems:
        raise CaffeBridgeError(problems)
    for param, value in plan:
        param.set_data(value.astype(param.dtype, copy=False))
    return blocks
