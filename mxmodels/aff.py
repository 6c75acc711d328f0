"""AFF / iAFF networks (YimianDai/open-aff; docs/architectures.md section 5).

The fusion replaces the residual addition in the stages from `start_stage` on (1-based over
the residual stages); earlier stages add. ImageNet bottlenecks and every ResNeXt block use
r=16, the CIFAR basic block r=4.
"""
from mxnet.gluon import nn

from .blocks.fusion import AFF, IAFF, CIFARPreActResNet
from .blocks.heads import ClassifierHead
from .blocks.stems import add_imagenet_stem
from .blocks.residual import ResNeXtUnit
from .registry import CIFAR, IMAGENET, register_model

FUSIONS = {"aff": AFF, "iaff": IAFF}


def _fusion(kind, channels, r, unit):
    """The fusion block of unit number `unit`, named as if it lived inside that unit."""
    try:
        return FUSIONS[kind](channels, r, prefix=f"unit{unit}_{kind}_")
    except KeyError:
        raise ValueError(f"fusion must be one of {sorted(FUSIONS)}; got {kind!r}") from None


def _avg_down(channels, in_channels, stride):
    """v1d shortcut: stride-sized average pool, then 1x1 conv + BN."""
    sc = nn.HybridSequential(prefix="shortcut_")
    with sc.name_scope():
        if stride != 1:
            sc.add(nn.AvgPool2D(stride, stride, ceil_mode=True, count_include_pad=False))
        sc.add(nn.Conv2D(channels, 1, use_bias=False, in_channels=in_channels),
               nn.BatchNorm(in_channels=channels))
    return sc


class AFFResNet(nn.HybridBlock):
    """ImageNet AFF backbone built from `blocks.residual.ResNeXtUnit` (post-activation, stride on
    the 3x3, ReLU after the fusion).

    ``groups=1, widths=64·2^i`` gives ResNet-50 v1b bottlenecks; ``groups=32, widths=128·2^i``
    gives ResNeXt-50 32x4d. ``deep_stem`` replaces the 7x7 conv with 3x3/2 c/2, 3x3 c/2, 3x3 c
    (each BN-ReLU) and uses v1d average-pool shortcuts.
    """

    def __init__(self, layers=(3, 4, 6, 3), groups=1, base_width=64, fusion="aff", r=16,
                 start_stage=3, deep_stem=False, stem_width=64, classes=1000, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            if deep_stem:
                self.features.add(
                    nn.Conv2D(stem_width // 2, 3, 2, 1, use_bias=False, in_channels=3),
                    nn.BatchNorm(in_channels=stem_width // 2), nn.Activation("relu"),
                    nn.Conv2D(stem_width // 2, 3, 1, 1, use_bias=False, in_channels=stem_width // 2),
                    nn.BatchNorm(in_channels=stem_width // 2), nn.Activation("relu"),
                    nn.Conv2D(stem_width, 3, 1, 1, use_bias=False, in_channels=stem_width // 2),
                    nn.BatchNorm(in_channels=stem_width), nn.Activation("relu"))
                in_channels = stem_width
            else:
                in_channels = add_imagenet_stem(self.features, pool=False)
            self.features.add(nn.MaxPool2D(3, 2, 1))
            for i, n in enumerate(layers):
                channels, mid = 256 * 2 ** i, base_width * 2 ** i
                stage = nn.HybridSequential(prefix=f"stage{i + 1}_")
                with stage.name_scope():
                    for j in range(n):
                        stride = 2 if (j == 0 and i > 0) else 1
                        cin = in_channels if j == 0 else channels
                        shortcut = None
                        if deep_stem and j == 0:
                            shortcut = _avg_down(channels, cin, stride)
                        fuse = _fusion(fusion, channels, r, j + 1) if i + 1 >= start_stage else None
                        stage.add(ResNeXtUnit(cin, channels, stride, mid_channels=mid,
                                              groups=groups, fuse=fuse, shortcut=shortcut,
                                              prefix=f"unit{j + 1}_"))
                self.features.add(stage)
                in_channels = channels
            self.head = ClassifierHead(classes, prefix="head_")

    def hybrid_forward(self, F, x):
        return self.head(self.features(x))


class CIFARAFFResNet(CIFARPreActResNet):
    """CIFAR AFF-ResNet: affine-free input BN, 3x3 stem, pre-activation basic blocks (1x1
    strided shortcut without BN when the width changes, no ReLU after the fusion), final
    BN-ReLU, global pool, FC."""

    def __init__(self, blocks=5, widths=(64, 64, 128, 256), fusion="aff", r=4, start_stage=1,
                 classes=100, **kwargs):
        def fuse_for(stage, channels, unit):
            return _fusion(fusion, channels, r, unit) if stage >= start_stage else None

        super().__init__(blocks, widths, classes, fuse_for=fuse_for, **kwargs)


class CIFARAFFResNeXt(nn.HybridBlock):
    """CIFAR AFF-ResNeXt: 3x3 64-BN-ReLU stem, three stages of post-activation ResNeXt units
    (`blocks.residual.ResNeXtUnit`; outputs 256/512/1024, 32 groups of width 4/8/16), every
    stage's first unit with a conv+BN projection, global pool, FC."""

    def __init__(self, layers=(4, 4, 4), groups=32, base_width=128, fusion="aff", r=16,
                 start_stage=1, classes=100, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            self.features.add(nn.Conv2D(64, 3, 1, 1, use_bias=False, in_channels=3),
                              nn.BatchNorm(in_channels=64), nn.Activation("relu"))
            in_channels = 64
            for i, n in enumerate(layers):
                channels, mid = 256 * 2 ** i, base_width * 2 ** i
                stage = nn.HybridSequential(prefix=f"stage{i + 1}_")
                with stage.name_scope():
                    for j in range(n):
                        fuse = _fusion(fusion, channels, r, j + 1) if i + 1 >= start_stage else None
                        stage.add(ResNeXtUnit(in_channels if j == 0 else channels, channels,
                                              2 if (j == 0 and i > 0) else 1, mid_channels=mid,
                                              groups=groups, fuse=fuse, prefix=f"unit{j + 1}_"))
                self.features.add(stage)
                in_channels = channels
            self.head = ClassifierHead(classes, prefix="head_")

    def hybrid_forward(self, F, x):
        return self.head(self.features(x))


@register_model(**IMAGENET)
def aff_resnet50(classes=1000, **kwargs):
    """AFF-ResNet-50: ResNet-50 v1b (7x7 stem, strided 1x1+BN shortcut), AFF (r=16) in stages 3-4.

    Parameters (1000 classes): 30.354M trainable (published 30.3M = trainable truncated to
    0.1M), 30.249M conv+fc.
    """
    return AFFResNet(fusion="aff", classes=classes, prefix="aff_resnet50_", **kwargs)


@register_model(**IMAGENET)
def iaff_resnet50(classes=1000, **kwargs):
    """iAFF-ResNet-50: as `aff_resnet50` with iAFF (two MS-CAMs per block).

    Parameters: 35.151M trainable (published 35.1M), 34.993M conv+fc.
    """
    return AFFResNet(fusion="iaff", classes=classes, prefix="iaff_resnet50_", **kwargs)


@register_model(**IMAGENET)
def aff_resnext50_32x4d(classes=1000, **kwargs):
    """AFF-ResNeXt-50-32x4d: deep stem 64-64-128, v1d average-pool shortcuts, AFF (r=16) in
    stages 3-4.

    Parameters: 29.954M trainable (published 29.9M = trainable truncated to 0.1M). With the
    7x7 stem it would be 29.826M, which truncates to 29.8M: the deep stem is what matches.
    """
    return AFFResNet(groups=32, base_width=128, fusion="aff", deep_stem=True, stem_width=128,
                     classes=classes, prefix="aff_resnext50_32x4d_", **kwargs)


@register_model(**IMAGENET)
def iaff_resnext50_32x4d(classes=1000, **kwargs):
    """iAFF-ResNeXt-50-32x4d: deep stem 64-64-128, v1d shortcuts, iAFF (r=16) in stages 3-4.

    Parameters: 34.751M trainable (published 34.7M); 34.623M with the 7x7 stem.
    """
    return AFFResNet(groups=32, base_width=128, fusion="iaff", deep_stem=True, stem_width=128,
                     classes=classes, prefix="iaff_resnext50_32x4d_", **kwargs)


@register_model(**CIFAR)
def cifar_aff_resnet32(classes=100, **kwargs):
    """CIFAR AFF-ResNet-32: 3 stages x 5 pre-activation basic blocks at 64/128/256 channels,
    AFF (r=4) in every block.

    Parameters (100 classes): 7.897M trainable by construction. The paper-era README
    (open-aff 806562e) prints 5.0M, which this architecture cannot give; the later README says
    7.9M, consistent with this count.
    """
    return CIFARAFFResNet(classes=classes, prefix="cifar_aff_resnet32_", **kwargs)


@register_model(**CIFAR)
def cifar_aff_resnext38_32x4d(classes=100, **kwargs):
    """CIFAR AFF-ResNeXt-38-32x4d: 3 stages x 4 ResNeXt units, AFF (r=16) in every unit.

    Parameters (100 classes): 7.770M trainable (published 7.8M). With r=4 it would be 11.9M.
    """
    return CIFARAFFResNeXt(classes=classes, prefix="cifar_aff_resnext38_32x4d_", **kwargs)
