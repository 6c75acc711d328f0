"""Checkpoints of the seed authors' own insightface symbols, loaded into the zoo models.

bruinxiong's `fresattnet.py` (modified Residual Attention Network for insightface) names
every layer after its place in the net: the stem `RA_conv1`, the units `RAN_R_unit{s}` and
`RAN_R_unit4_{1,2,3}`, the attention modules `RAN_AM_s{s}_unit{j}` with their units
`_rb_first`, `_tk_rb_{1,2}`, `_sm_rb_*` (mask down and up path), `_sk_cn_rb_*` (skips),
`_sm_c1x1_{a,b}` (mask head) and `_RB_last` / `_rb_last`; inside a unit, `_c1x1` (input BN),
`_c1x1_a`, `_c3x3`, `_c1x1_b`, `_bn_c1x1_b`, `_se_{1,2}`, `_conv1sc`, `_bn_sc`; layer kinds
add `_conv2d`, `_batchnorm`, `_prelu`; the Option-E head is `bn1`, `pre_fc1`, `fc1`.
Its `fcrunet.py` (modified CRU-Net) names the stem `conv1` / `conv1-bn1`, the units
`conv{2..5}_x_{i}` with parts `c1x1-a`, `c3x3-b` / `c3x3-b(1)`, `c1x1-b`, `c1x1-c`,
`bn-c1x1-c`, projections `c1x1-w(s/N)`, and the shared CRU bases `<set>_1x1_bases[dim3]` and
`<set>_3x3_bases[dim21]`. `seed_names(net)` walks a zoo face model and gives each Gluon
parameter the name the seed's symbol file gives the same weight, so `load_seed_checkpoint`
loads an insightface checkpoint (PREFIX-NNNN.params) trained with the seed's symbol into the
zoo model.
"""
import mxnet as mx
from mxnet.gluon import nn

from caffe2mx.converter.errors import UsageError

from ..attention import ResidualAttentionNet
from ..blocks.attention import AttentionModule, MaskBranch, MaskHead
from ..blocks.cru import FaceCRUUnit, FaceResNeXtUnit
from ..blocks.heads import EmbeddingHead
from ..blocks.residual import FaceBottleneck, SqueezeExcitation
from ..cru_net import FaceCRUNet

_SUFFIX = {"weight": "weight", "bias": "bias", "gamma": "gamma", "beta": "beta",
           "running_mean": "moving_mean", "running_var": "moving_var", "alpha": "gamma"}
_KIND = {nn.Conv2D: "conv2d", nn.BatchNorm: "batchnorm", nn.PReLU: "prelu"}


def _layer(block, seed, out):
    """Record the seed names of one layer's parameters (`seed` without the kind suffix for
    conv/BN/PReLU layers, or the full layer name for the head's)."""
    for pname, param in block._reg_params.items():
        out[param.name] = f"{seed}_{_SUFFIX[pname]}"


def _named(block, base, out):
    kind = next((k for cls, k in _KIND.items() if isinstance(block, cls)), None)
    if kind is None:
        raise TypeError(f"no seed naming for {type(block).__name__}")
    _layer(block, f"{base}_{kind}", out)


def _unit(unit, name, out):
    if not isinstance(unit, FaceBottleneck):
        raise TypeError(f"expected a face bottleneck for {name}, got {type(unit).__name__}")
    body = list(unit.body._children.values())
    parts = ["c1x1", "c1x1_a", "c3x3", "c3x3", "c3x3", "c1x1_b", "c1x1_b", "c1x1_b", "bn_c1x1_b"]
    for block, part in zip(body, parts):
        _named(block, f"{name}_{part}", out)
    if len(body) > len(parts):
        se = body[len(parts)]
        if not isinstance(se, SqueezeExcitation):
            raise TypeError(f"unexpected block {type(se).__name__} in {name}")
        _named(se.fc1, f"{name}_se_1", out)
        _layer(se.act, f"{name}_se_prelu", out)
        _named(se.fc2, f"{name}_se_2", out)
    if unit.shortcut is not None:
        conv, bn = unit.shortcut._children.values()
        _named(conv, f"{name}_conv1sc", out)
        _named(bn, f"{name}_bn_sc", out)


def _mask(mask, name, out):
    if not isinstance(mask, MaskBranch):
        raise TypeError(f"expected a mask branch in {name}")
    levels = len(mask.down)
    for k, level in enumerate(mask.down, start=1):
        units = list(level._children.values())
        if k == levels:
            for j, u in enumerate(units, start=1):
                _unit(u, f"{name}_sm_rb_{k}_{j}", out)
        else:
            (u,) = units
            _unit(u, f"{name}_sm_rb_{k}", out)
    for k, u in enumerate(mask.skip, start=1):
        _unit(u, f"{name}_sk_cn_rb_{k}", out)
    for i, level in enumerate(mask.up):
        (u,) = level._children.values()
        _unit(u, f"{name}_sm_rb_{levels + 1 + i}", out)
    head = mask.head
    if not isinstance(head, MaskHead) or head.pre is None:
        raise TypeError(f"expected the face mask head in {name}")
    bn, act = head.pre._children.values()
    _named(bn, f"{name}_sm_c1x1_a", out)
    _named(act, f"{name}_sm_c1x1_a", out)
    _named(head.conv1, f"{name}_sm_c1x1_a", out)
    _named(head.bn1, f"{name}_sm_c1x1_b", out)
    _named(head.act1, f"{name}_sm_c1x1_b", out)
    _named(head.conv2, f"{name}_sm_c1x1_b", out)


def _head(head, out):
    _layer(head.bn1, "bn1", out)
    _layer(head.pre_fc1, "pre_fc1", out)
    _layer(head.fc1, "fc1", out)


def _complete(net, out):
    missing = sorted(set(net.collect_params().keys()) - set(out))
    if missing:
        raise TypeError(f"parameters without a seed name: {missing[:5]}")
    return out


def _resnext(unit, name, out):
    """fcrunet.py Residual_unit: c1x1-a (BN, conv), c3x3-b, c1x1-c (BN, PReLU, conv),
    bn-c1x1-c, projection c1x1-w(s/2) + bn-c1x1-w(s/2)."""
    if not isinstance(unit, FaceResNeXtUnit):
        raise TypeError(f"expected a face ResNeXt unit for {name}")
    body = list(unit.body._children.values())
    parts = ["c1x1-a", "c1x1-a", "c3x3-b", "c3x3-b", "c3x3-b", "c1x1-c", "c1x1-c", "c1x1-c",
             "bn-c1x1-c"]
    for block, part in zip(body, parts):
        _named(block, f"{name}_{part}", out)
    if unit.shortcut is not None:
        conv, bn = unit.shortcut._children.values()
        stride = conv._kwargs["stride"][0]
        _named(conv, f"{name}_c1x1-w(s/{stride})", out)
        _named(bn, f"{name}_bn-c1x1-w(s/{stride})", out)


def _cru(unit, name, bases, out):
    """fcrunet.py CR_unit; the shared 1x1 and depthwise 3x3 weights are the variables
    `<set>_1x1_bases[dim3]_weight` and `<set>_3x3_bases[dim21]_weight`."""
    if not isinstance(unit, FaceCRUUnit):
        raise TypeError(f"expected a face CRU unit for {name}")
    if unit.proj_in is not None:
        conv, bn = unit.proj_in._children.values()
        _named(conv, f"{name}_c1x1-w(s/1)", out)
        _named(bn, f"{name}_bn-c1x1-w(s/1)", out)
        conv, bn = unit.shortcut._children.values()
        _named(conv, f"{name}_c1x1-w(s/key)", out)
        _named(bn, f"{name}_bn-c1x1-w(s/key)", out)
    _named(unit.bn1, f"{name}_c1x1-a", out)
    _named(unit.act1, f"{name}_c1x1-a", out)
    out[unit.shared_1x1.weight.name] = f"{bases}_1x1_bases[dim3]_weight"
    _named(unit.bn2, f"{name}_c3x3-b(1)", out)
    _named(unit.act2, f"{name}_c3x3-b(1)", out)
    out[unit.shared_dw3x3.weight.name] = f"{bases}_3x3_bases[dim21]_weight"
    _named(unit.bn3, f"{name}_c1x1-b", out)
    _named(unit.act3, f"{name}_c1x1-b", out)
    _named(unit.conv3, f"{name}_c1x1-b", out)
    _named(unit.bn4, f"{name}_c1x1-c", out)
    _named(unit.act4, f"{name}_c1x1-c", out)
    _named(unit.conv4, f"{name}_c1x1-c", out)
    _named(unit.bn5, f"{name}_bn-c1x1-c", out)


def _cru_net_names(net):
    """fcrunet.py: conv1 / conv1-bn1, units conv{2..5}_x_{i}; shared bases `conv3_x` for
    stage 3 and `conv4_x_{1,2,3}` for each six units of stage 4."""
    out = {}
    conv, bn, act, *stages = net.features._children.values()
    _named(conv, "conv1", out)
    _named(bn, "conv1-bn1", out)
    _named(act, "conv1-bn1", out)
    for s, stage in enumerate(stages, start=2):
        for i, unit in enumerate(stage._children.values(), start=1):
            name = f"conv{s}_x_{i}"
            if s in (2, 5):
                _resnext(unit, name, out)
            else:
                _cru(unit, name, "conv3_x" if s == 3 else f"conv4_x_{(i - 1) // 6 + 1}", out)
    _head(net.head, out)
    return _complete(net, out)


def seed_names(net):
    """{zoo parameter name: seed symbol parameter name} for a face attention model
    (fresattnet.py; face_attention56/92, with or without SE) or a face CRU-Net (fcrunet.py;
    face_cru_net56/116)."""
    if isinstance(net, FaceCRUNet):
        return _cru_net_names(net)
    if not isinstance(net, ResidualAttentionNet) or not isinstance(net.output, EmbeddingHead):
        raise UsageError("seed names exist for the face models (face_attention56/92, "
                         "face_cru_net56/116)")
    out = {}
    stem, *attention_stages, last = net.features._children.values()
    conv, bn, act = stem._children.values()
    _named(conv, "RA_conv1", out)
    _named(bn, "RA_conv1_bn1", out)
    _named(act, "RA_conv1_bn1", out)
    for s, stage in enumerate(attention_stages, start=1):
        first, *modules = stage._children.values()
        _unit(first, f"RAN_R_unit{s}", out)
        for j, module in enumerate(modules, start=1):
            if not isinstance(module, AttentionModule):
                raise TypeError(f"expected an attention module in stage {s}")
            name = f"RAN_AM_s{s}_unit{j}"
            (pre,) = module.pre._children.values()
            _unit(pre, f"{name}_rb_first", out)
            for t, u in enumerate(module.trunk._children.values(), start=1):
                _unit(u, f"{name}_tk_rb_{t}", out)
            _mask(module.mask, name, out)
            (post,) = module.post._children.values()
            _unit(post, f"{name}_RB_last" if s == 1 else f"{name}_rb_last", out)
    for j, u in enumerate(last._children.values(), start=1):
        _unit(u, f"RAN_R_unit4_{j}", out)
    _head(net.output, out)
    return _complete(net, out)


def load_seed_checkpoint(net, params_file):
    """Load an insightface PREFIX-NNNN.params written with the seed's symbol (fresattnet.py or
    fcrunet.py) into the zoo face model `net`; extra training-only arrays (the margin weight fc7_weight) are
    ignored, anything else unmatched is an error listing it. Returns the name map used."""
    names = seed_names(net)
    try:
        saved = mx.nd.load(str(params_file))
    except mx.base.MXNetError as exc:
        raise UsageError(f"{params_file}: not an MXNet params file ({exc})") from None
    values = {k.split(":", 1)[-1]: v for k, v in saved.items()}
    wanted = set(names.values())
    missing = sorted(wanted - set(values))
    extra = sorted(set(values) - wanted - {"fc7_weight"})
    if missing or extra:
        raise UsageError(f"{params_file}: not a checkpoint of this net's fresattnet symbol; "
                         f"missing {missing[:8]}{' ...' if len(missing) > 8 else ''}, "
                         f"unexpected {extra[:8]}{' ...' if len(extra) > 8 else ''}")
    params = net.collect_params()
    for zoo, seed in names.items():
        param = params[zoo]
        value = values[seed]
        if param._data is None and not param._deferred_init:
            param.initialize()
        if param.shape and all(param.shape) and tuple(param.shape) != tuple(value.shape):
            raise UsageError(f"{params_file}: {seed} has shape {value.shape}, the model's {zoo} "
                             f"{param.shape}")
        param._load_init(value, mx.cpu()) if param._deferred_init else param.set_data(value)
    return names
