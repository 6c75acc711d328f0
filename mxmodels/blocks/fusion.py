"""Attentional feature fusion (Dai et al., "Attentional Feature Fusion", WACV 2021).

X is the residual branch (after its last BN) and Y the shortcut; these blocks are called as
``fuse(x, y)`` and replace the residual addition ``x + y``.
"""
from mxnet.gluon import nn


class ChannelContext(nn.HybridBlock):
    """Point-wise bottleneck 1x1(C->C/r, bias)-BN-ReLU-1x1(C/r->C, bias)-BN.

    With ``pooled=True`` a global average pool runs first, giving the global-context branch of
    MS-CAM; without it the branch keeps the spatial map (local context).
    """

    def __init__(self, channels, inter_channels, pooled=False, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.pool = nn.GlobalAvgPool2D() if pooled else None
            self.conv1 = nn.Conv2D(inter_channels, 1, in_channels=channels)
            self.bn1 = nn.BatchNorm(in_channels=inter_channels)
            self.relu = nn.Activation("relu")
            self.conv2 = nn.Conv2D(channels, 1, in_channels=inter_channels)
            self.bn2 = nn.BatchNorm(in_channels=channels)

    def hybrid_forward(self, F, x):
        if self.pool is not None:
            x = self.pool(x)
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


class MSCAM(nn.HybridBlock):
    """Multi-scale channel attention module: sigmoid(local(x) + global(x)), broadcast over H, W.

    Returns the attention weights M in (0, 1) with the shape of x, not the re-weighted input.
    """

    def __init__(self, channels, r=4, **kwargs):
        super().__init__(**kwargs)
        inter = max(channels // r, 1)
        with self.name_scope():
            self.local_att = ChannelContext(channels, inter, pooled=False, prefix="local_")
            self.global_att = ChannelContext(channels, inter, pooled=True, prefix="global_")
            self.sigmoid = nn.Activation("sigmoid")

    def hybrid_forward(self, F, x):
        return self.sigmoid(F.broadcast_add(self.local_att(x), self.global_att(x)))


class AFF(nn.HybridBlock):
    """Attentional feature fusion: 2·X⊙M + 2·Y⊙(1−M) with M = MS-CAM(X + Y).

    The factor 2 is kept from the reference implementation (with M ≈ 0.5 at initialisation it
    makes the fusion start out as the plain sum X + Y).
    """

    def __init__(self, channels, r=4, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.att = MSCAM(channels, r, prefix="att_")

    def hybrid_forward(self, F, x, y):
        m = self.att(x + y)
        return 2 * (y + m * (x - y))


class IAFF(nn.HybridBlock):
    """Iterative AFF: a first MS-CAM fuses X and Y into Z, a second MS-CAM(Z) fuses X and Y again.

    out = X⊙M2 + Y⊙(1−M2), M2 = MS-CAM2(X⊙M1 + Y⊙(1−M1)), M1 = MS-CAM1(X + Y); no factor 2.
    """

    def __init__(self, channels, r=4, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.att1 = MSCAM(channels, r, prefix="att1_")
            self.att2 = MSCAM(channels, r, prefix="att2_")

    def hybrid_forward(self, F, x, y):
        d = x - y
        z = y + self.att1(x + y) * d
        return y + self.att2(z) * d


def _relu(_channels):
    return nn.Activation("relu")


class PreActBasicBlock(nn.HybridBlock):
    """Pre-activation basic block with pluggable activation and fusion (CIFAR AFF and ATAC nets).

    BN-act1-3x3/s, BN-act2-3x3, then ``fuse(branch, shortcut)`` (default: addition) with no
    activation after it. The shortcut is the raw input, or a bias-free strided 1x1 conv without
    BN when the width changes. ``act(channels)`` builds each activation: act1 sees the input
    width, act2 the output width.
    """

    def __init__(self, channels, in_channels, stride=1, act=_relu, fuse=None, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.bn1 = nn.BatchNorm(in_channels=in_channels)
            self.act1 = act(in_channels)
            self.conv1 = nn.Conv2D(channels, 3, stride, 1, use_bias=False, in_channels=in_channels)
            self.bn2 = nn.BatchNorm(in_channels=channels)
            self.act2 = act(channels)
            self.conv2 = nn.Conv2D(channels, 3, 1, 1, use_bias=False, in_channels=channels)
            if stride != 1 or channels != in_channels:
                self.down = nn.Conv2D(channels, 1, stride, use_bias=False, in_channels=in_channels)
            else:
                self.down = None
            self.fuse = fuse

    def hybrid_forward(self, F, x):
        y = self.conv1(self.act1(self.bn1(x)))
        y = self.conv2(self.act2(self.bn2(y)))
        shortcut = x if self.down is None else self.down(x)
        return y + shortcut if self.fuse is None else self.fuse(y, shortcut)


class CIFARPreActResNet(nn.HybridBlock):
    """Affine-free input BN and 3x3 stem, stages of `PreActBasicBlock`, final BN-act, global
    pool, FC: the CIFAR backbone shared by the AFF and ATAC nets, which differ only in
    `act(channels)` and in `fuse_for(stage, channels, unit)` (a fusion block or None)."""

    def __init__(self, blocks, widths, classes, act=_relu, fuse_for=None, **kwargs):
        from .heads import ClassifierHead
        from .stems import add_cifar_stem

        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            in_channels = add_cifar_stem(self.features, widths[0])
            for i, channels in enumerate(widths[1:]):
                stage = nn.HybridSequential(prefix=f"stage{i + 1}_")
                with stage.name_scope():
                    for j in range(blocks):
                        fuse = fuse_for(i + 1, channels, j + 1) if fuse_for else None
                        stage.add(PreActBasicBlock(channels, in_channels, 2 if (j == 0 and i > 0) else 1,
                                                   act=act, fuse=fuse, prefix=f"unit{j + 1}_"))
                        in_channels = channels
                self.features.add(stage)
            self.head = ClassifierHead(classes, pre_act=lambda: act(in_channels), in_channels=in_channels,
                                       prefix="head_")

    def hybrid_forward(self, F, x):
        return self.head(self.features(x))
