"""The network a run trains: the registered model with its classifier for the data's classes,
Caffe weights (`--from-caffe`), frozen stages (`--freeze`), initialisation, last-gamma and
no-wd, and for embedding models the margin head."""
import warnings

import mxnet as mx
from mxnet.gluon import nn

from caffe2mx.converter.errors import ModelError, UsageError

from ..registry import get_model, model_config
from . import tricks
from .margin import ARCFACE, MarginHead

INITIALIZERS = {
    "msra": lambda: mx.init.MSRAPrelu(),
    "xavier": lambda: mx.init.Xavier(),
    "xavier-out": lambda: mx.init.Xavier(rnd_type="gaussian", factor_type="out", magnitude=2),
}


def stages(net):
    """[(name, block)] of the model's top-level stages, in order: the children of `features`
    (named after their prefix: stem, stage1, ...), then the head (`output` or `head`)."""
    out = []
    features = getattr(net, "features", None)
    if features is not None:
        for key, child in features._children.items():
            name = child.prefix[len(features.prefix):].rstrip("_") or key
            out.append((name, child))
    for key in ("output", "head"):
        block = getattr(net, key, None)
        if isinstance(block, nn.Block):
            out.append((key, block))
    return out


def freeze(net, stage):
    """Fix every parameter of the stages up to and including `stage`; their BatchNorms use
    their running statistics (which then stay as loaded). Returns the frozen parameter names."""
    names = [n for n, _ in stages(net)]
    if stage not in names:
        raise UsageError(f"--freeze {stage}: the model's stages are {', '.join(names)}")
    frozen = []
    for name, block in stages(net):
        for p in block.collect_params().values():
            p.grad_req = "null"
            frozen.append(p.name)
        _global_stats(block)
        if name == stage:
            break
    return frozen


def _global_stats(block):
    if isinstance(block, nn.BatchNorm):
        block._kwargs["use_global_stats"] = True
    for child in block._children.values():
        _global_stats(child)


def _last_dense(block, parent=None, key=None, found=None):
    for k, child in block._children.items():
        found = _last_dense(child, block, k, found)
    if isinstance(block, nn.Dense):
        found = (parent, key, block)
    return found


def replace_classifier(net, classes):
    """Swap the model's last Dense for a new one with `classes` outputs (fresh, initialised
    later); returns the new block."""
    found = _last_dense(net)
    if found is None or found[0] is None:
        raise UsageError("this model has no Dense classifier to replace (--classes)")
    parent, key, old = found
    with parent.name_scope():
        new = nn.Dense(classes, in_units=old._in_units, prefix="new_classifier_")
    if isinstance(parent, nn.HybridSequential) and key.isdigit():
        parent._children[key] = new
    else:
        setattr(parent, key, new)
    return new


def _output_width(net):
    found = _last_dense(net)
    return found[2]._units if found else None


def build(cfg, data_classes, ctxs):
    """(net, margin head or None, facts dict) ready to train on `ctxs`."""
    config = model_config(cfg.model)
    kwargs = dict(cfg.model_kwargs or {})
    facts = {"model": cfg.model, "kind": config.kind}
    embedding = config.kind == "embedding"
    target = cfg.classes or data_classes
    if not embedding and target is None:
        raise UsageError("the data does not say how many classes it has: give --classes N")
    if not embedding and not cfg.from_caffe and "classes" not in kwargs:
        kwargs["classes"] = target
    if cfg.model.startswith("face_attention") and "head" not in kwargs:
        # the zoo builds this head outside the net's name scope (`embeddinghead<N>_`); a fixed
        # prefix keeps checkpoint names the same in every run
        from ..blocks.heads import EmbeddingHead
        kwargs["head"] = EmbeddingHead(kwargs.get("emb_size", config.classes),
                                       in_channels=(kwargs.get("widths") or (2048,))[-1],
                                       prefix=f"{cfg.model}_head_")
    try:
        net = get_model(cfg.model, **kwargs)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--model {cfg.model} with {kwargs}: {exc}") from None
    if cfg.from_caffe:
        _load_caffe(net, cfg)
        facts["from_caffe"] = list(cfg.from_caffe)
        if not embedding and _output_width(net) != target:
            replace_classifier(net, target)
            facts["new_classifier"] = target
    init = INITIALIZERS[cfg.init]()
    for p in net.collect_params().values():
        if p._data is None and not p._deferred_init:
            p.initialize(default_init=init, ctx=ctxs)
    net.collect_params().reset_ctx(ctxs)
    if cfg.last_gamma:
        if cfg.from_caffe:
            warnings.warn("--last-gamma ignored: the weights come from Caffe", stacklevel=2)
        else:
            facts["last_gamma_zeroed"] = len(tricks.zero_last_gamma(_materialised(net, cfg, ctxs)))
    if cfg.freeze:
        facts["frozen_parameters"] = len(freeze(net, cfg.freeze))
    head = None
    if embedding:
        emb = kwargs.get("emb_size", config.classes)
        if data_classes is None:
            raise UsageError("face training needs identity labels (an insightface folder with 'property')")
        head = MarginHead(data_classes, emb, s=cfg.margin_s, m=tuple(cfg.margin or ARCFACE),
                          prefix="margin_")
        head.initialize(ctx=ctxs)
        facts["margin"] = {"s": cfg.margin_s, "m": list(cfg.margin or ARCFACE), "identities": data_classes}
    if cfg.dtype == "float16":
        net.cast("float16")
        if head is not None:
            head.cast("float16")
    if cfg.no_wd:
        params = dict(net.collect_params().items())
        facts["no_wd_parameters"] = len(tricks.no_weight_decay(params))
    if cfg.mode == "hybrid":
        net.hybridize(static_alloc=True, static_shape=True)
        if head is not None:
            head.hybridize(static_alloc=True, static_shape=True)
    return net, head, facts


def _materialised(net, cfg, ctxs):
    """Run one tiny forward so deferred shapes are known (last-gamma needs the arrays)."""
    if any(p._deferred_init for p in net.collect_params().values()):
        side = cfg.input_size or model_config(cfg.model).input_size
        net(mx.nd.zeros((1, 3, side, side), ctx=ctxs[0]))
    return net


def _load_caffe(net, cfg):
    from ..caffe_bridge import CaffeBridgeError, load_caffe
    prototxt, caffemodel = cfg.from_caffe
    for path in (prototxt, caffemodel):
        try:
            open(path, "rb").close()
        except OSError as exc:
            raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        load_caffe(net, prototxt, caffemodel, blob3_mode=cfg.bn_blob3)
    except CaffeBridgeError as exc:
        raise ModelError(f"the net does not match model '{cfg.model}': {exc}", file=prototxt) from None
