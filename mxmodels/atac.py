"""ATAC: ResNets whose ReLUs are replaced by channel-wise attentional activation (ChaATAC).

Structure from YimianDai/open-atac (docs/architectures.md section 6).
"""
from mxnet.gluon import nn

from .blocks.atac import ChaATAC
from .blocks.fusion import CIFARPreActResNet
from .blocks.heads import ClassifierHead
from .blocks.stems import add_imagenet_stem
from .registry import CIFAR, IMAGENET, register_model


def _act_factory(use_atac, r):
    if use_atac:
        return lambda channels: ChaATAC(channels, r=r)
    return lambda channels: nn.Activation("relu")


class BottleneckATAC(nn.HybridBlock):
    """ResNet v1b bottleneck (stride on the 3x3) whose relu1/relu2 come from `act(channels)`.

    conv1 1x1-bn1-act1, conv2 3x3/s-bn2-act2, conv3 1x1-bn3, + (strided 1x1 conv + BN
    projection when the shape changes), then the ReLU after the sum (kept even with ATAC).
    """

    def __init__(self, planes, in_channels, stride=1, act=None, expansion=4, **kwargs):
        super().__init__(**kwargs)
        act = act or _act_factory(False, None)
        out = planes * expansion
        with self.name_scope():
            self.conv1 = nn.Conv2D(planes, 1, use_bias=False, in_channels=in_channels)
            self.bn1 = nn.BatchNorm(in_channels=planes)
            self.act1 = act(planes)
            self.conv2 = nn.Conv2D(planes, 3, stride, 1, use_bias=False, in_channels=planes)
            self.bn2 = nn.BatchNorm(in_channels=planes)
            self.act2 = act(planes)
            self.conv3 = nn.Conv2D(out, 1, use_bias=False, in_channels=planes)
            self.bn3 = nn.BatchNorm(in_channels=out)
            if stride != 1 or in_channels != out:
                self.down = nn.HybridSequential(prefix="down_")
                with self.down.name_scope():
                    self.down.add(nn.Conv2D(out, 1, stride, use_bias=False, in_channels=in_channels),
                                  nn.BatchNorm(in_channels=out))
            else:
                self.down = None
            self.relu3 = nn.Activation("relu")

    def hybrid_forward(self, F, x):
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.act2(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        shortcut = x if self.down is None else self.down(x)
        return self.relu3(y + shortcut)


class ATACResNetV1b(nn.HybridBlock):
    """ResNet v1b (7x7/2 stem, 3x3/2 max-pool, stride on the bottleneck 3x3) with ChaATAC in the
    bottlenecks of the last `act_layers` stages."""

    def __init__(self, layers=(3, 4, 6, 3), classes=1000, r=2, act_layers=2, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            in_channels = add_imagenet_stem(self.features)
            for i, n in enumerate(layers):
                act = _act_factory(i >= len(layers) - act_layers, r)
                stage = nn.HybridSequential(prefix=f"stage{i + 1}_")
                with stage.name_scope():
                    for j in range(n):
                        stage.add(BottleneckATAC(64 * 2 ** i, in_channels,
                                                 stride=2 if (j == 0 and i > 0) else 1, act=act,
                                                 prefix=f"unit{j + 1}_"))
                        in_channels = 256 * 2 ** i
                self.features.add(stage)
            self.head = ClassifierHead(classes, prefix="head_")

    def hybrid_forward(self, F, x):
        return self.head(self.features(x))


class CIFARATACResNetV2(CIFARPreActResNet):
    """open-atac's CIFAR ResNet-V2 (`ResNet20V2ATAC`): affine-free input BN, 3x3 16 stem, three
    stages of `(depth-2)/6` pre-activation basic blocks at 16/32/64 channels, final BN-ChaATAC,
    global pool, FC. Every activation, the final one included, is a ChaATAC (act_layers=4)."""

    def __init__(self, depth=20, classes=10, r=2, widths=(16, 16, 32, 64), **kwargs):
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 (8, 14, 20, 32, 56, 110, ...); got {depth}")
        super().__init__((depth - 2) // 6, widths, classes, act=_act_factory(True, r), **kwargs)


@register_model(**IMAGENET)
def atac_resnet50(classes=1000, r=2, act_layers=2, **kwargs):
    """ATAC-ResNet-50: ResNet-50 v1b with ChaATAC (r=2) as relu1/relu2 of stages 3 and 4.

    Parameters (1000 classes): 28.006M "all" (with BN running statistics; the published 28.0M),
    27.935M trainable, 27.863M conv+fc. MACs at 224x224: ~4.40G by `summary.summarize`
    (ResNet-50 v1b 4.09G + 0.308G for the ChaATACs; the first ChaATAC of stages 3/4 runs at the
    pre-stride resolution because v1b strides on the 3x3). The published 4.4 GFLOPs agrees with
    this v1b count; the facts sheet's "4.09G" estimate adds 0.231G to a 3.86G v1 base.
    """
    return ATACResNetV1b((3, 4, 6, 3), classes, r, act_layers, prefix="atac_resnet50_", **kwargs)


@register_model(**CIFAR)
def cifar_atac_resnet(depth=20, classes=10, r=2, **kwargs):
    """CIFAR ATAC-ResNet (pre-activation, 16/32/64 channels), depth 6n+2, default 20 (n=3).

    r=2 follows the ImageNet README command (open-atac's CIFAR script takes r as a flag).
    Parameters for depth 20, 10 classes: see tests/test_mxmodels_family.py (asserted from
    `collect_params`); no published count to compare against.
    """
    return CIFARATACResNetV2(depth, classes, r, prefix=f"cifar_atac_resnet{depth}_", **kwargs)
