"""Residual units: the Caffe RAN pre-activation bottleneck, the AttentionNeXt ResNeXt unit
and the face-recognition bottleneck of the modified (insightface-style) networks.

Every conv, BN and dense layer that mirrors a Caffe layer is tagged with that layer's
name (`caffe_name`), built from the same structural naming as the original prototxts,
so that `mxmodels.caffe_bridge` can load Caffe weights by structure.
"""
from mxnet import initializer
from mxnet.gluon import nn
from mxnet.gluon.block import Block, HybridBlock


def caffe_layer(block, name):
    """Record on `block` the name of the Caffe layer whose blobs it holds; returns the block."""
    block.caffe_name = name
    return block


def caffe_layers(block):
    """Yield (caffe_name, block) for every tagged block under `block`, in structural order."""
    if getattr(block, "caffe_name", None):
        yield block.caffe_name, block
    for child in block._children.values():
        yield from caffe_layers(child)


def conv(channels, kernel, stride=1, groups=1, in_channels=0, name=None, use_bias=False):
    """A Caffe-style convolution: 'same' padding for odd kernels, no bias unless asked."""
    layer = nn.Conv2D(channels, kernel, strides=stride, padding=kernel // 2, groups=groups,
                      use_bias=use_bias, in_channels=in_channels)
    return caffe_layer(layer, name) if name else layer


def batchnorm(in_channels=0, name=None, **norm_kwargs):
    layer = nn.BatchNorm(in_channels=in_channels, **norm_kwargs)
    return caffe_layer(layer, name) if name else layer


def relu(_channels=None):
    return nn.Activation("relu")


def prelu(channels):
    """Per-channel PReLU (insightface convention, alpha initialised to 0.25)."""
    return nn.PReLU(alpha_initializer=initializer.Constant(0.25), in_channels=channels)


class PreActBottleneck(HybridBlock):
    """Pre-activation bottleneck of the Caffe Residual Attention Network.

    BN-ReLU-1x1(C/4), BN-ReLU-3x3(C/4, stride), BN-ReLU-1x1(C). The first BN-ReLU is the
    Caffe layer `<in_name>/bn`, which in the prototxt belongs to the producer of the input;
    it is consumed only by this unit, so it lives here. The projection shortcut (when the
    shape changes) reads the pre-activated input; the identity shortcut reads the raw input.
    """

    def __init__(self, in_channels, channels, stride=1, name="", in_name="", norm_kwargs=None,
                 **kwargs):
        super().__init__(**kwargs)
        nk = norm_kwargs or {}
        mid = channels // 4
        with self.name_scope():
            self.bn0 = batchnorm(in_channels, f"{in_name}/bn", **nk)
            self.conv1 = conv(mid, 1, in_channels=in_channels, name=f"{name}/branch1/conv1_1x1")
            self.bn1 = batchnorm(mid, f"{name}/branch1/conv1_1x1/bn", **nk)
            self.conv2 = conv(mid, 3, stride, in_channels=mid, name=f"{name}/branch1/conv2_3x3")
            self.bn2 = batchnorm(mid, f"{name}/branch1/conv2_3x3/bn", **nk)
            self.conv3 = conv(channels, 1, in_channels=mid, name=f"{name}/branch1/conv3_1x1")
            if stride != 1 or in_channels != channels:
                self.proj = conv(channels, 1, stride, in_channels=in_channels,
                                 name=f"{name}/branch2/conv1_1x1")
            else:
                self.proj = None

    def hybrid_forward(self, F, x):
        pre = F.Activation(self.bn0(x), act_type="relu")
        out = F.Activation(self.bn1(self.conv1(pre)), act_type="relu")
        out = F.Activation(self.bn2(self.conv2(out)), act_type="relu")
        out = self.conv3(out)
        shortcut = self.proj(pre) if self.proj is not None else x
        return out + shortcut


class ResNeXtUnit(HybridBlock):
    """Post-activation ResNeXt unit (AttentionNeXt; reused by CRU-Net and AFF-ResNeXt).

    1x1(mid)-BN-act, grouped 3x3(mid, g)-BN-act, 1x1(C)-BN; shortcut is identity or
    conv1x1+BN projection; `fuse(residual, shortcut)` combines them (default: addition),
    then act. `mid` defaults to C/2 (the AttentionNeXt width). `fuse` may be a Block (its
    parameters become the unit's) or any callable working on both NDArrays and Symbols.
    `shortcut` overrides the projection (e.g. an avg-pool + conv shortcut); `stride_at`
    selects which conv carries the stride ('conv1', 'conv2' as in Caffe, or 'conv3').
    """

    def __init__(self, in_channels, channels, stride=1, mid_channels=None, groups=32, fuse=None,
                 shortcut=None, act=relu, stride_at="conv2", name="", norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        if stride_at not in ("conv1", "conv2", "conv3"):
            raise ValueError(f"stride_at must be conv1, conv2 or conv3, got {stride_at!r}")
        nk = norm_kwargs or {}
        mid = mid_channels or channels // 2
        s = {k: (stride if k == stride_at else 1) for k in ("conv1", "conv2", "conv3")}
        with self.name_scope():
            self.conv1 = conv(mid, 1, s["conv1"], in_channels=in_channels,
                              name=f"{name}/branch1/conv1_1x1")
            self.bn1 = batchnorm(mid, f"{name}/branch1/conv1_1x1/bn", **nk)
            self.act1 = act(mid)
            self.conv2 = conv(mid, 3, s["conv2"], groups=groups, in_channels=mid,
                              name=f"{name}/branch1/conv2_3x3")
            self.bn2 = batchnorm(mid, f"{name}/branch1/conv2_3x3/bn", **nk)
            self.act2 = act(mid)
            self.conv3 = conv(channels, 1, s["conv3"], in_channels=mid,
                              name=f"{name}/branch1/conv3_1x1")
            self.bn3 = batchnorm(channels, f"{name}/branch1/conv3_1x1/bn", **nk)
            if shortcut is not None:
                self.shortcut = shortcut
            elif stride != 1 or in_channels != channels:
                self.shortcut = nn.HybridSequential(prefix="shortcut_")
                self.shortcut.add(
                    conv(channels, 1, stride, in_channels=in_channels,
                         name=f"{name}/branch2/conv1_1x1"),
                    batchnorm(channels, f"{name}/branch2/conv1_1x1/bn", **nk))
            else:
                self.shortcut = None
            self.fuse = fuse if isinstance(fuse, Block) else None
            self._fuse_fn = None if isinstance(fuse, Block) else fuse
            self.act3 = act(channels)

    def hybrid_forward(self, F, x):
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        if self.fuse is not None:
            out = self.fuse(out, shortcut)
        elif self._fuse_fn is not None:
            out = self._fuse_fn(out, shortcut)
        else:
            out = out + shortcut
        return self.act3(out)


class SqueezeExcitation(HybridBlock):
    """Squeeze-excitation: GAP, 1x1 conv C/r, PReLU, 1x1 conv C, sigmoid, channel scale.

    Bias-free by default: that is what the face-attention sizes of the facts sheet
    (84.13M / 106.70M with SE) count; insightface's symbols give these convs a bias
    (`use_bias=True`, +17C/16 parameters per unit).
    """

    def __init__(self, channels, reduction=16, use_bias=False, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.fc1 = nn.Conv2D(channels // reduction, 1, in_channels=channels,
                                 use_bias=use_bias)
            self.act = prelu(channels // reduction)
            self.fc2 = nn.Conv2D(channels, 1, in_channels=channels // reduction,
                                 use_bias=use_bias)

    def hybrid_forward(self, F, x):
        w = F.mean(x, axis=(2, 3), keepdims=True)
        w = F.sigmoid(self.fc2(self.act(self.fc1(w))))
        return F.broadcast_mul(x, w)


class FaceBottleneck(HybridBlock):
    """Bottleneck of the modified face networks (bruinxiong fresattnet, insightface style).

    BN, 1x1(C/4) with no activation, BN-PReLU-3x3(C/4), BN-PReLU-1x1(C) carrying the stride,
    BN, optional squeeze-excitation; shortcut identity or 1x1(stride)+BN; no activation after
    the sum. Body BNs use MXNet's symbol default eps 1e-3 and momentum 0.9, as the reference
    symbols omit them.
    """

    def __init__(self, in_channels, channels, stride=1, use_se=False, name="", in_name="",
                 norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        nk = dict(epsilon=1e-3, momentum=0.9)
        nk.update(norm_kwargs or {})
        mid = channels // 4
        with self.name_scope():
            self.body = nn.HybridSequential(prefix="body_")
            self.body.add(
                batchnorm(in_channels, **nk),
                conv(mid, 1, in_channels=in_channels),
                batchnorm(mid, **nk), prelu(mid),
                conv(mid, 3, in_channels=mid),
                batchnorm(mid, **nk), prelu(mid),
                conv(channels, 1, stride, in_channels=mid),
                batchnorm(channels, **nk))
            if use_se:
                self.body.add(SqueezeExcitation(channels))
            if stride != 1 or in_channels != channels:
                self.shortcut = nn.HybridSequential(prefix="shortcut_")
                self.shortcut.add(conv(channels, 1, stride, in_channels=in_channels),
                                  batchnorm(channels, **nk))
            else:
                self.shortcut = None

    def hybrid_forward(self, F, x):
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        return self.body(x) + shortcut
