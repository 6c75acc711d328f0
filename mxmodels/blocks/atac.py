"""Attentional activation (Dai et al., "Attention as Activation", ICPR 2020)."""
from mxnet.gluon import nn


class ChaATAC(nn.HybridBlock):
    """Channel-wise attentional activation: x ⊙ sigmoid(BN(1x1(ReLU(BN(1x1(x)))))).

    Both 1x1 convs are bias-free (C -> C/r -> C). It is point-wise and local: each pixel gets
    its own gate, so it can stand in for a ReLU anywhere. ``use_global`` puts a global average
    pool in front (off for the ImageNet models).
    """

    def __init__(self, channels, r=2, use_global=False, use_relu=True, **kwargs):
        super().__init__(**kwargs)
        inter = max(channels // r, 1)
        with self.name_scope():
            self.pool = nn.GlobalAvgPool2D() if use_global else None
            self.conv1 = nn.Conv2D(inter, 1, use_bias=False, in_channels=channels)
            self.bn1 = nn.BatchNorm(in_channels=inter)
            self.relu = nn.Activation("relu") if use_relu else None
            self.conv2 = nn.Conv2D(channels, 1, use_bias=False, in_channels=inter)
            self.bn2 = nn.BatchNorm(in_channels=channels)
            self.sigmoid = nn.Activation("sigmoid")

    def hybrid_forward(self, F, x):
        w = x if self.pool is None else self.pool(x)
        w = self.bn1(self.conv1(w))
        if self.relu is not None:
            w = self.relu(w)
        w = self.sigmoid(self.bn2(self.conv2(w)))
        return F.broadcast_mul(x, w)
