"""Residual Attention Networks: ImageNet (Caffe-faithful), CIFAR (32x32) and face variants.

Every model is one `ResidualAttentionNet` configured by a layout (stem, stage widths, mask
pools per stage, strides, head) and a depth spec (p, t, r; m1, m2, m3). Depth is
3 * ((2p + t) * (m1 + m2 + m3) + 6) + 2 for all of them.
"""
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from .blocks.attention import CAFFE_NAMING, NEXT_NAMING, AttentionModule, MaskHead, caffe_maxpool
from .blocks.residual import (FaceBottleneck, PreActBottleneck, ResNeXtUnit, batchnorm,
                              caffe_layer, conv, prelu, relu)
from .registry import CIFAR, FACE, IMAGENET, register_model

# depth -> ((p, t, r), (m1, m2, m3))
SPECS = {
    56: ((1, 2, 1), (1, 1, 1)),
    92: ((1, 2, 1), (1, 2, 3)),
    128: ((1, 2, 1), (3, 3, 3)),
    164: ((1, 2, 1), (4, 4, 4)),
    236: ((1, 2, 1), (6, 6, 6)),
    452: ((2, 4, 3), (6, 6, 6)),
}
FACE_DEPTHS = (56, 92)

# layout -> stage widths (3 attention stages + last), mask pools per attention stage,
# stride of each stage's first unit, the final average-pool size and the mask's max-pool
# (Caffe ceil mode for the Caffe models; pad 1 as the CIFAR ports and the face symbols).
LAYOUTS = {
    "imagenet": dict(widths=(256, 512, 1024, 2048), pools=(3, 2, 1), strides=(1, 2, 2, 2), pool=7,
                     mask_pool="caffe"),
    "cifar": dict(widths=(128, 256, 512, 1024), pools=(2, 1, 0), strides=(1, 2, 2, 1), pool=8,
                  mask_pool="pad1"),
    "face": dict(widths=(256, 512, 1024, 2048), pools=(3, 2, 1), strides=(2, 2, 2, 2), pool=None,
                 mask_pool="pad1"),
}
UNITS = ("preact", "next", "face")


def _unit_factory(unit, norm_kwargs, use_se):
    def make(in_channels, channels, stride, name, in_name):
        if unit == "preact":
            return PreActBottleneck(in_channels, channels, stride, name=name, in_name=in_name,
                                    norm_kwargs=norm_kwargs)
        if unit == "next":
            return ResNeXtUnit(in_channels, channels, stride, name=name, norm_kwargs=norm_kwargs)
        return FaceBottleneck(in_channels, channels, stride, use_se=use_se, name=name,
                              in_name=in_name, norm_kwargs=norm_kwargs)
    return make


def _head_factory(unit, norm_kwargs):
    def make(channels, name, in_name):
        return MaskHead(channels, pre_bn=(unit != "next"), act=prelu if unit == "face" else relu,
                        name=name, in_name=in_name, norm_kwargs=norm_kwargs)
    return make


def default_face_head(emb_size=512):
    """insightface Option-E head from `blocks.heads` (bn1, Dropout 0.4, pre_fc1, fc1)."""
    from .blocks.heads import EmbeddingHead
    return EmbeddingHead(emb_size=emb_size, in_channels=2048)


class ResidualAttentionNet(HybridBlock):
    """Residual Attention Network (Wang et al., CVPR 2017) for one layout and depth spec.

    `layout`: 'imagenet' (224x224; 7x7/2 stem and Caffe max-pool, stages at 56/28/14/7,
    7x7 average pool, FC with bias), 'cifar' (32x32; 3x3/1 stem with 32 channels, stages at
    32/32/16/8 with 2/1/0 mask pools, last three 1024 units at stride 1, BN-ReLU, average
    pool 8, FC) or 'face' (112x112; 3x3/1 stem, BN-PReLU, every stage strided, `head`
    applied to the 7x7x2048 map).
    `unit`: 'preact' (Caffe RAN), 'next' (AttentionNeXt) or 'face' (bruinxiong fresattnet).
    `widths` (4 stage widths) and `stem_width` override the layout's (reduced-width models).
    `extra_sums`: add the down features and the trunk on the mask's up path as the
    tengshaofeng/PistonY/GluonCV ports and the face symbols do; the Caffe release does not.
    The mask max-pools are Caffe's (ceil mode, no pad) for 'imagenet' and pad-1 pools for
    'cifar' and 'face', as in the code those layouts come from.
    Conv/BN/FC layers carry the Caffe layer names of the prototxts (`caffe_name`), which
    `caffe_bridge.load_caffe` uses to load Caffe weights.
    """

    def __init__(self, p=1, t=2, r=1, modules=(1, 1, 1), unit="preact", layout="imagenet",
                 classes=1000, extra_sums=False, use_se=False, head=None, norm_kwargs=None,
                 widths=None, stem_width=None, **kwargs):
        super().__init__(**kwargs)
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
        if layout == "face" and head is None:
            raise ValueError("the face layout needs a head (e.g. default_face_head())")
        cfg = LAYOUTS[layout]
        nk = dict(norm_kwargs or {})
        if unit == "face":
            nk.setdefault("epsilon", 1e-3)
            nk.setdefault("momentum", 0.9)
        make_unit = _unit_factory(unit, nk, use_se)
        make_head = _head_factory(unit, nk)
        naming = NEXT_NAMING if unit == "next" else CAFFE_NAMING
        preact = unit == "preact"
        widths = tuple(widths or cfg["widths"])
        if len(widths) != 4 or any(w % 4 for w in widths):
            raise ValueError(f"widths must be 4 stage widths divisible by 4, got {widths}")
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            stem = nn.HybridSequential(prefix="stem_")
            with stem.name_scope():
                if layout == "imagenet":
                    stem.add(conv(64, 7, 2, in_channels=3, name="conv1"),
                             batchnorm(64, "conv1/bn", **nk), nn.Activation("relu"),
                             caffe_maxpool())
                    prev, in_ch = "pool1_3x3_s2", 64
                else:
                    width = stem_width or (32 if layout == "cifar" else 64)
                    stem.add(conv(width, 3, 1, in_channels=3, name="conv1"),
                             batchnorm(width, "conv1/bn", **nk),
                             prelu(width) if layout == "face" else nn.Activation("relu"))
                    prev, in_ch = "stem", width
            self.features.add(stem)
            for s, (letter, count) in enumerate(zip("ABC", modules)):
                stage = nn.HybridSequential(prefix=f"stage{s + 1}_")
                with stage.name_scope():
                    name = f"pre_res_{s + 1}"
                    stage.add(make_unit(in_ch, widths[s], cfg["strides"][s], name, prev))
                    prev, in_ch = name, widths[s]
                    for i in range(1, count + 1):
                        name = f"Attention{letter}_{i}"
                        stage.add(AttentionModule(in_ch, cfg["pools"][s], p, t, r, make_unit,
                                                  make_head, extra_sums, naming, name, prev,
                                                  cfg["mask_pool"], prefix=f"attention{i}_"))
                        prev = name
                self.features.add(stage)
            stage = nn.HybridSequential(prefix="stage4_")
            with stage.name_scope():
                for j in range(1, 4):
                    name = f"post_res_4_{j}"
                    stage.add(make_unit(in_ch, widths[3], cfg["strides"][3] if j == 1 else 1,
                                        name, prev))
                    prev, in_ch = name, widths[3]
            self.features.add(stage)
            if layout == "face":
                self.output = head
            else:
                self.output = nn.HybridSequential(prefix="head_")
                with self.output.name_scope():
                    if preact:
                        self.output.add(batchnorm(in_ch, f"{prev}/bn", **nk),
                                        nn.Activation("relu"))
                    self.output.add(nn.AvgPool2D(cfg["pool"], 1),
                                    caffe_layer(nn.Dense(classes, in_units=in_ch), "classifier"))

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def _ran(depth, **kwargs):
    if depth not in SPECS:
        raise ValueError(f"depth must be one of {sorted(SPECS)}, got {depth}")
    (p, t, r), m = SPECS[depth]
    return ResidualAttentionNet(p, t, r, m, **kwargs)


@register_model(**IMAGENET)
def attention56(classes=1000, **kwargs):
    """Attention-56, Caffe structure. 31.883M parameters counting BN running stats
    (31.811M trainable), 6.27 G multiply-adds at 224x224; the paper prints 31.9M / 6.2G."""
    return _ran(56, classes=classes, **kwargs)


@register_model(**IMAGENET)
def attention92(classes=1000, **kwargs):
    """Attention-92, Caffe structure (modules 1, 2, 3). 52.600M parameters counting BN
    running stats (52.466M trainable), 10.53 G multiply-adds at 224x224. The paper prints
    51.3M, which the architecture of the released prototxt cannot give (it is about one
    stage-3 unit short); this model follows the prototxt."""
    return _ran(92, classes=classes, **kwargs)


@register_model(**IMAGENET)
def attention128(classes=1000, **kwargs):
    """Attention-128 (modules 3, 3, 3): 57.637M parameters with BN running stats."""
    return _ran(128, classes=classes, **kwargs)


@register_model(**IMAGENET)
def attention164(classes=1000, **kwargs):
    """Attention-164 (modules 4, 4, 4): 70.514M parameters with BN running stats."""
    return _ran(164, classes=classes, **kwargs)


@register_model(**IMAGENET)
def attention236(classes=1000, **kwargs):
    """Attention-236 (modules 6, 6, 6): 96.267M parameters with BN running stats."""
    return _ran(236, classes=classes, **kwargs)


@register_model(**IMAGENET)
def attention452(classes=1000, **kwargs):
    """Attention-452 (p, t, r = 2, 4, 3; modules 6, 6, 6): 177.147M parameters with BN
    running stats. No Caffe release exists; names extend the prototxt pattern
    (see prototxts/generate.py)."""
    return _ran(452, classes=classes, **kwargs)


@register_model(**IMAGENET)
def attentionnext56(classes=1000, **kwargs):
    """AttentionNeXt-56: post-activation ResNeXt units (32 groups, width C/2), no BN-ReLU
    before the mask head. 31.32M trainable parameters, 6.42 G multiply-adds."""
    return _ran(56, unit="next", classes=classes, **kwargs)


@register_model(**IMAGENET)
def attentionnext92(classes=1000, **kwargs):
    """AttentionNeXt-92 (modules 1, 2, 3): 52.10M trainable parameters, 10.70 G
    multiply-adds."""
    return _ran(92, unit="next", classes=classes, **kwargs)


def _cifar(depth, classes, kwargs):
    kwargs.setdefault("extra_sums", True)
    return _ran(depth, layout="cifar", classes=classes, **kwargs)


@register_model(**CIFAR)
def cifar_attention56(classes=10, **kwargs):
    """Attention-56 for 32x32 inputs (PistonY/tengshaofeng layout, their mask sums):
    7.203M trainable parameters with 10 classes."""
    return _cifar(56, classes, kwargs)


@register_model(**CIFAR)
def cifar_attention92(classes=10, **kwargs):
    """Attention-92 for 32x32 inputs: 12.171M trainable parameters with 10 classes."""
    return _cifar(92, classes, kwargs)


@register_model(**CIFAR)
def cifar_attention128(classes=10, **kwargs):
    """Attention-128 for 32x32 inputs: 13.112M trainable parameters with 10 classes."""
    return _cifar(128, classes, kwargs)


@register_model(**CIFAR)
def cifar_attention164(classes=10, **kwargs):
    """Attention-164 for 32x32 inputs: 16.067M trainable parameters with 10 classes."""
    return _cifar(164, classes, kwargs)


@register_model(**CIFAR)
def cifar_attention236(classes=10, **kwargs):
    """Attention-236 for 32x32 inputs: 21.976M trainable parameters with 10 classes."""
    return _cifar(236, classes, kwargs)


@register_model(**CIFAR)
def cifar_attention452(classes=10, **kwargs):
    """Attention-452 for 32x32 inputs: 40.079M trainable parameters with 10 classes."""
    return _cifar(452, classes, kwargs)


@register_model(**CIFAR)
def slim_attention56(classes=10, widths=(16, 32, 64, 128), stem_width=8, **kwargs):
    """Attention-56 in the CIFAR layout (32x32, mask sums as cifar_attention56) at 1/8 of its
    stage widths: 16/32/64/128 channels (bottleneck width C/4, so 4..32 inside the units) and an
    8-channel stem. 0.118M trainable parameters (117,570) with 10 classes (cifar_attention56:
    7.203M).
    Small enough to train on CPU in minutes: the model of `caffe2mx train --recipe digits-demo`.
    """
    return _cifar(56, classes, dict(kwargs, widths=widths, stem_width=stem_width))


def _face(depth, emb_size, use_se, head, kwargs):
    if depth not in FACE_DEPTHS:
        raise ValueError(f"face attention depth must be one of {FACE_DEPTHS}, got {depth}")
    kwargs.setdefault("extra_sums", True)
    head = default_face_head(emb_size) if head is None else head
    return _ran(depth, unit="face", layout="face", use_se=use_se, head=head, **kwargs)


@register_model(**FACE)
def face_attention56(emb_size=512, use_se=False, head=None, **kwargs):
    """Face Attention-56 (bruinxiong fresattnet, 112x112, Option-E 512-d embedding):
    81.20M trainable parameters without SE, 84.13M with `use_se=True`."""
    return _face(56, emb_size, use_se, head, kwargs)


@register_model(**FACE)
def face_attention92(emb_size=512, use_se=False, head=None, **kwargs):
    """Face Attention-92: 101.91M trainable parameters without SE, 106.70M with SE."""
    return _face(92, emb_size, use_se, head, kwargs)
