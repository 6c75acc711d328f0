"""Layer table (output shape, parameters, MACs) for a Gluon model, one row per leaf-layer call.

A leaf layer is a block without child blocks (Conv2D, Dense, BatchNorm, PReLU, pooling,
Activation, ...). Element-wise arithmetic written inside a composite block's `hybrid_forward`
(residual sums, attention products) has no row.

Conventions
-----------
* ``macs`` are multiply-accumulates per sample (batch dimension divided out) of Conv2D
  (``C_out·H·W·(C_in/groups)·kh·kw``), Conv2DTranspose and Dense (``units·in_units``); bias
  adds, BatchNorm, activations, pooling and element-wise ops count 0. This is the "FLOPs =
  multiply-adds" convention of docs/architectures.md.
* ``params`` counts every element of the layer's Parameters, BatchNorm running mean/var
  included (what ``collect_params()`` holds); ``trainable`` counts those with
  ``grad_req != 'null'``.
* A Parameter reused by several layers (CRU-Net's shared 1x1/depthwise bases, or a block
  called twice) is counted in the first row that uses it; later rows list it under ``shared``
  and have it excluded from ``params``/``trainable``. So ``totals(rows)`` — a plain column
  sum — counts each Parameter exactly once, like ``collect_params()``.
"""
import mxnet as mx
from mxnet import autograd
from mxnet.gluon import nn

_MAC_TYPES = (nn.Conv2D, nn.Conv2DTranspose, nn.Dense)


def _walk(block, seen=None):
    seen = set() if seen is None else seen
    if id(block) in seen:
        return
    seen.add(id(block))
    yield block
    for child in block._children.values():
        yield from _walk(child, seen)


def _first_array(out):
    while isinstance(out, (list, tuple)):
        out = out[0]
    return out


def _macs(block, inputs, output):
    if not isinstance(block, _MAC_TYPES):
        return 0
    w = block.weight.shape
    batch = output.shape[0]
    if isinstance(block, nn.Dense):
        return int(output.size // batch * w[1])
    kernel = 1
    for k in w[2:]:
        kernel *= k
    if isinstance(block, nn.Conv2DTranspose):
        x = _first_array(inputs)
        return int(x.size // batch * w[1] * kernel)
    return int(output.size // batch * w[1] * kernel)


def _init_missing(model):
    for p in model.collect_params().values():
        if p._data is None and not p._deferred_init:
            p.initialize()


def summarize(model, input_shape):
    """Run one forward pass on zeros of `input_shape` and return one dict per leaf-layer call.

    `input_shape` is (N, C, H, W) or (C, H, W) (then N = 1). Parameters not yet initialized
    get their default initializer. A hybridized model is run imperatively for the pass (so
    every layer is seen) and its hybridization is restored afterwards.
    """
    shape = tuple(input_shape)
    if len(shape) == 3:
        shape = (1,) + shape
    _init_missing(model)
    blocks = list(_walk(model))
    active = {id(b): getattr(b, "_active", False) for b in blocks}
    for b in blocks:
        if hasattr(b, "_active"):
            b._active = False

    rows, seen_params, handles = [], set(), []

    def hook(block, inputs, output):
        out = _first_array(output)
        new = shared = trainable = 0
        for p in block.params.values():
            if p.name in seen_params:
                shared += _size(p.shape)
                continue
            seen_params.add(p.name)
            new += _size(p.shape)
            if p.grad_req != "null":
                trainable += _size(p.shape)
        rows.append({"name": block.name, "type": type(block).__name__,
                     "output_shape": tuple(out.shape), "params": new, "trainable": trainable,
                     "shared": shared, "macs": _macs(block, inputs, out)})

    try:
        for b in blocks:
            if not b._children:
                handles.append(b.register_forward_hook(hook))
        with autograd.predict_mode():
            model(mx.nd.zeros(shape))
    finally:
        for h in handles:
            h.detach()
        for b in blocks:
            if hasattr(b, "_active"):
                b._active = active[id(b)]
    return rows


def _size(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def totals(rows):
    """Column sums: {'params', 'trainable', 'macs', 'layers'}; shared Parameters count once."""
    return {"params": sum(r["params"] for r in rows),
            "trainable": sum(r["trainable"] for r in rows),
            "macs": sum(r["macs"] for r in rows),
            "layers": len(rows)}
