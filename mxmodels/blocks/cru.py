"""Collective residual units (Chen et al., "Sharing Residual Units Through Collective Tensor
Factorization", IJCAI 2018; docs/architectures.md sections 3 and 4).

The units of one group share their first 1x1 and their depthwise 3x3: the later units build
those convs with ``params=`` of the group owner's convs, so they hold the *same* Parameter
objects (one weight in ``collect_params()``, one variable in the exported symbol, gradients
from every unit accumulate into it). Everything else in a unit is its own.
"""
from mxnet import initializer
from mxnet.gluon import nn


def _relu(_channels):
    return nn.Activation("relu")


def _prelu(channels):
    return nn.PReLU(alpha_initializer=initializer.Constant(0.25), in_channels=channels)


def _shared_conv(owner, attr, make):
    """Build the conv `make(params)` with the Parameters of `owner.<attr>` (None: its own)."""
    return make(None if owner is None else getattr(owner, attr).params)


class CRUUnit(nn.HybridBlock):
    """ImageNet CRU (improved form, pre-activation).

    BN-act, shared 1x1 (C -> R), shared depthwise 3x3 (R groups), BN-act, 1x1 (R -> R), BN-act,
    1x1 (R -> C), plus the identity. The first unit of a stage (``stride`` != 1 or a width
    change) carries a strided 1x1 projection without BN; its output is both the shortcut and
    the input of the shared 1x1, so the shared bases always see C channels and the unit adds
    no weights beyond the projection (this is what reproduces the published 25.5M/43.7M).

    ``share_with`` is the unit owning the group's bases (None: this unit owns them).
    """

    def __init__(self, channels, width, in_channels, stride=1, share_with=None, act=_relu,
                 norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        nk = norm_kwargs or {}
        with self.name_scope():
            if stride != 1 or in_channels != channels:
                self.proj = nn.Conv2D(channels, 1, stride, use_bias=False, in_channels=in_channels)
            else:
                self.proj = None
            self.bn1 = nn.BatchNorm(in_channels=channels, **nk)
            self.act1 = act(channels)
            self.shared_1x1 = _shared_conv(share_with, "shared_1x1", lambda p: nn.Conv2D(
                width, 1, use_bias=False, in_channels=channels, prefix="shared_1x1_", params=p))
            self.shared_dw3x3 = _shared_conv(share_with, "shared_dw3x3", lambda p: nn.Conv2D(
                width, 3, 1, 1, groups=width, use_bias=False, in_channels=width,
                prefix="shared_dw3x3_", params=p))
            self.bn2 = nn.BatchNorm(in_channels=width, **nk)
            self.act2 = act(width)
            self.conv3 = nn.Conv2D(width, 1, use_bias=False, in_channels=width)
            self.bn3 = nn.BatchNorm(in_channels=width, **nk)
            self.act3 = act(width)
            self.conv4 = nn.Conv2D(channels, 1, use_bias=False, in_channels=width)

    def hybrid_forward(self, F, x):
        if self.proj is not None:
            x = self.proj(x)
        y = self.shared_dw3x3(self.shared_1x1(self.act1(self.bn1(x))))
        y = self.conv3(self.act2(self.bn2(y)))
        y = self.conv4(self.act3(self.bn3(y)))
        return x + y


class FaceCRUUnit(nn.HybridBlock):
    """CRU of the modified face CRU-Net (bruinxiong `fcrunet.py` CR_unit, section 3).

    BN-PReLU-shared 1x1 (C -> R), BN-PReLU-shared depthwise 3x3, BN-PReLU-1x1 (R -> R),
    BN-PReLU-1x1 (R -> C, carrying the stride), BN, + shortcut; no activation after the sum.
    A stage's first unit has an extra stride-1 1x1+BN input projection feeding the branch and
    a strided 1x1+BN shortcut. Body BNs use eps 1e-3, momentum 0.9 (MXNet symbol defaults).
    """

    def __init__(self, channels, width, in_channels, stride=1, share_with=None,
                 norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        nk = dict(epsilon=1e-3, momentum=0.9)
        nk.update(norm_kwargs or {})
        with self.name_scope():
            if stride != 1 or in_channels != channels:
                self.proj_in = nn.HybridSequential(prefix="proj_in_")
                self.proj_in.add(nn.Conv2D(channels, 1, use_bias=False, in_channels=in_channels),
                                 nn.BatchNorm(in_channels=channels, **nk))
                self.shortcut = nn.HybridSequential(prefix="shortcut_")
                self.shortcut.add(nn.Conv2D(channels, 1, stride, use_bias=False,
                                            in_channels=in_channels),
                                  nn.BatchNorm(in_channels=channels, **nk))
            else:
                self.proj_in = self.shortcut = None
            self.bn1 = nn.BatchNorm(in_channels=channels, **nk)
            self.act1 = _prelu(channels)
            self.shared_1x1 = _shared_conv(share_with, "shared_1x1", lambda p: nn.Conv2D(
                width, 1, use_bias=False, in_channels=channels, prefix="shared_1x1_", params=p))
            self.bn2 = nn.BatchNorm(in_channels=width, **nk)
            self.act2 = _prelu(width)
            self.shared_dw3x3 = _shared_conv(share_with, "shared_dw3x3", lambda p: nn.Conv2D(
                width, 3, 1, 1, groups=width, use_bias=False, in_channels=width,
                prefix="shared_dw3x3_", params=p))
            self.bn3 = nn.BatchNorm(in_channels=width, **nk)
            self.act3 = _prelu(width)
            self.conv3 = nn.Conv2D(width, 1, use_bias=False, in_channels=width)
            self.bn4 = nn.BatchNorm(in_channels=width, **nk)
            self.act4 = _prelu(width)
            self.conv4 = nn.Conv2D(channels, 1, stride, use_bias=False, in_channels=width)
            self.bn5 = nn.BatchNorm(in_channels=channels, **nk)

    def hybrid_forward(self, F, x):
        if self.proj_in is not None:
            shortcut, x = self.shortcut(x), self.proj_in(x)
        else:
            shortcut = x
        y = self.shared_1x1(self.act1(self.bn1(x)))
        y = self.shared_dw3x3(self.act2(self.bn2(y)))
        y = self.conv3(self.act3(self.bn3(y)))
        y = self.bn5(self.conv4(self.act4(self.bn4(y))))
        return y + shortcut


class FaceResNeXtUnit(nn.HybridBlock):
    """ResNeXt unit of the modified face CRU-Net (`fcrunet.py` Residual_unit).

    BN, 1x1 (C/2) without activation, BN-PReLU-grouped 3x3 (C/2, g=32), BN-PReLU-1x1 (C,
    carrying the stride), BN, + identity or strided 1x1+BN shortcut; no activation after the
    sum. (The other face bottleneck, `blocks.residual.FaceBottleneck`, is C/4 wide and not
    grouped.)
    """

    def __init__(self, channels, in_channels, stride=1, groups=32, norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        nk = dict(epsilon=1e-3, momentum=0.9)
        nk.update(norm_kwargs or {})
        mid = channels // 2
        with self.name_scope():
            self.body = nn.HybridSequential(prefix="body_")
            self.body.add(nn.BatchNorm(in_channels=in_channels, **nk),
                          nn.Conv2D(mid, 1, use_bias=False, in_channels=in_channels),
                          nn.BatchNorm(in_channels=mid, **nk), _prelu(mid),
                          nn.Conv2D(mid, 3, 1, 1, groups=groups, use_bias=False, in_channels=mid),
                          nn.BatchNorm(in_channels=mid, **nk), _prelu(mid),
                          nn.Conv2D(channels, 1, stride, use_bias=False, in_channels=mid),
                          nn.BatchNorm(in_channels=channels, **nk))
            if stride != 1 or in_channels != channels:
                self.shortcut = nn.HybridSequential(prefix="shortcut_")
                self.shortcut.add(nn.Conv2D(channels, 1, stride, use_bias=False,
                                            in_channels=in_channels),
                                  nn.BatchNorm(in_channels=channels, **nk))
            else:
                self.shortcut = None

    def hybrid_forward(self, F, x):
        return self.body(x) + (x if self.shortcut is None else self.shortcut(x))


def cru_stage(unit_cls, units, channels, width, in_channels, stride, group_size=None,
              prefix="", **unit_kwargs):
    """A HybridSequential of `units` CRU units; a new set of shared bases every `group_size`
    units (None: one set for the whole stage). The stride sits in the first unit."""
    stage = nn.HybridSequential(prefix=prefix)
    group_size = group_size or units
    with stage.name_scope():
        owner = None
        for i in range(units):
            if i % group_size == 0:
                owner = None
            unit = unit_cls(channels, width, in_channels if i == 0 else channels,
                            stride=stride if i == 0 else 1, share_with=owner,
                            prefix=f"unit{i + 1}_", **unit_kwargs)
            owner = owner or unit
            stage.add(unit)
    return stage
