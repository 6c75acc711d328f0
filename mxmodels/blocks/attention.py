"""The attention module of the Residual Attention Network: trunk, soft mask, (1+M)*T.

One implementation serves the ImageNet (Caffe-faithful), CIFAR and face variants: the unit
type, the mask head, the number of max-pools in the mask and whether the mask adds the
extra up-path sums of the tengshaofeng/PistonY/GluonCV ports are all arguments.
"""
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from .residual import batchnorm, conv, relu

CAFFE_NAMING = {"down": "down_sample", "up": "up_sample", "up_sum": "up_sample"}
"""Layer-name pieces of the Attention-{56,92} prototxts."""
NEXT_NAMING = {"down": "down", "up": "up", "up_sum": "up"}
"""Layer-name pieces of the AttentionNeXt prototxts."""


def caffe_maxpool():
    """Caffe MAX 3x3/2 without pad, which rounds the output size up.

    Gluon's ceil mode clips the last window to the map exactly as Caffe does, so sizes and
    values agree (56 -> 28, 28 -> 14, 14 -> 7, 32 -> 16). `MaxPool2D(3, 2, 1)` gives the
    same sizes for even inputs but its windows are shifted by one pixel.
    """
    return nn.MaxPool2D(pool_size=3, strides=2, padding=0, ceil_mode=True)


def mask_pool(kind="caffe"):
    """Max-pool 3x3/2 of the mask: 'caffe' (ceil mode, no pad) or 'pad1' (floor mode, pad 1,
    as in the MXNet/PyTorch ports and the face symbols); equal sizes, shifted windows."""
    if kind == "caffe":
        return caffe_maxpool()
    if kind == "pad1":
        return nn.MaxPool2D(pool_size=3, strides=2, padding=1)
    raise ValueError(f"mask pool must be 'caffe' or 'pad1', got {kind!r}")


def resize_like(F, x, like):
    """Bilinear align-corners resize of `x` to the height and width of `like` (Caffe Interp)."""
    return F.contrib.BilinearResize2D(x, like, mode="like", align_corners=True)


class MaskHead(HybridBlock):
    """End of the mask: [BN-act]-1x1-BN-act-1x1-sigmoid, convs without bias.

    The leading BN-act is the Caffe layer `<in_name>/bn`; AttentionNeXt has none.
    """

    def __init__(self, channels, pre_bn=True, act=relu, name="", in_name="", norm_kwargs=None,
                 **kwargs):
        super().__init__(**kwargs)
        nk = norm_kwargs or {}
        with self.name_scope():
            self.pre = None
            if pre_bn:
                self.pre = nn.HybridSequential(prefix="pre_")
                self.pre.add(batchnorm(channels, f"{in_name}/bn", **nk), act(channels))
            self.conv1 = conv(channels, 1, in_channels=channels, name=f"{name}/linear_1")
            self.bn1 = batchnorm(channels, f"{name}/linear_1/bn", **nk)
            self.act1 = act(channels)
            self.conv2 = conv(channels, 1, in_channels=channels, name=f"{name}/linear_2")

    def hybrid_forward(self, F, x):
        if self.pre is not None:
            x = self.pre(x)
        return F.sigmoid(self.conv2(self.act1(self.bn1(self.conv1(x)))))


def _seq(units, prefix):
    seq = nn.HybridSequential(prefix=prefix)
    for u in units:
        seq.add(u)
    return seq


class MaskBranch(HybridBlock):
    """Bottom-up/top-down soft mask with `num_pools` max-pools.

    Level k (1..n) is a max-pool then r units (2r at the innermost level); levels below the
    innermost have a skip unit. Going up, the coarser map is resized to the level's size and
    summed with the skip (plus, with `extra_sums`, the level's down feature), then r units.
    The last resize is to the trunk's size (plus the trunk with `extra_sums`), then the head.
    With `num_pools=0` the mask is 2r units and the head (CIFAR stage 3).
    Units counted: 6r+2 for 3 pools, 4r+1 for 2, 2r for 1 or 0. `pool`: see `mask_pool`.
    """

    def __init__(self, channels, num_pools, r, make_unit, make_head, extra_sums=False,
                 naming=CAFFE_NAMING, name="", in_name="", pool="caffe", **kwargs):
        super().__init__(**kwargs)
        self.num_pools = num_pools
        self.extra_sums = extra_sums
        down, up, up_sum = naming["down"], naming["up"], naming["up_sum"]
        levels = max(num_pools, 1)

        def unit(uname, uin):
            return make_unit(channels, channels, 1, uname, uin)

        with self.name_scope():
            self.pools = _seq([mask_pool(pool) for _ in range(num_pools)], "pools_")
            self.down = nn.HybridSequential(prefix="down_")
            self.skip = nn.HybridSequential(prefix="skip_")
            last_down = []
            for k in range(1, levels + 1):
                n_units = 2 * r if k == levels else r
                prev = f"{name}/{down}/pool{k}_3x3_s2" if num_pools else in_name
                level = []
                for j in range(1, n_units + 1):
                    uname = f"{name}/{down}/res{k}_{j}"
                    level.append(unit(uname, prev))
                    prev = uname
                self.down.add(_seq(level, f"level{k}_"))
                last_down.append(prev)
                if k < levels:
                    self.skip.add(unit(f"{name}/skip/res{k}", prev))
            self.up = nn.HybridSequential(prefix="up_")
            for k in range(levels - 1, 0, -1):
                prev = f"{name}/{up_sum}{k}"
                level = []
                for j in range(1, r + 1):
                    uname = f"{name}/{up}/res{k}_{j}"
                    level.append(unit(uname, prev))
                    prev = uname
                self.up.add(_seq(level, f"level{k}_"))
            head_in = f"{name}/{up}/interp_1" if num_pools else last_down[-1]
            self.head = make_head(channels, name, head_in)

    def hybrid_forward(self, F, x, trunk):
        feats, skips = [], []
        out = x
        for k in range(len(self.down)):
            if self.num_pools:
                out = self.pools[k](out)
            out = self.down[k](out)
            if k < len(self.skip):
                feats.append(out)
                skips.append(self.skip[k](out))
        for i, k in enumerate(range(len(feats) - 1, -1, -1)):
            resized = resize_like(F, out, skips[k])
            if self.extra_sums:
                resized = resized + feats[k]
            out = self.up[i](skips[k] + resized)
        if self.num_pools:
            out = resize_like(F, out, trunk)
            if self.extra_sums:
                out = out + trunk
        return self.head(out)


class AttentionModule(HybridBlock):
    """p pre-processing units, trunk of t units and soft mask M, output T*M + T, p post units.

    The mask reads the last pre-processing unit's output. T*M + T is summed in Caffe's order
    (Eltwise PROD then SUM) rather than as (1+M)*T, so converted models agree to the bit.
    Names: `<name>/trunk/res{i}` for the p+t trunk units, `<name>/mask/...` for the mask,
    and the post units `<name>/post_res{j}` with the last one named `<name>` (for p=1 that
    is the prototxt's `<name>/branch1/...`, reading `<name>/fusion`).
    """

    def __init__(self, channels, num_pools, p=1, t=2, r=1, make_unit=None, make_head=None,
                 extra_sums=False, naming=CAFFE_NAMING, name="", in_name="", pool="caffe",
                 **kwargs):
        super().__init__(**kwargs)
        if make_unit is None or make_head is None:
            raise ValueError("AttentionModule needs make_unit and make_head")
        with self.name_scope():
            prev = in_name
            units = []
            for i in range(1, p + t + 1):
                uname = f"{name}/trunk/res{i}"
                units.append(make_unit(channels, channels, 1, uname, prev))
                prev = uname
            self.pre = _seq(units[:p], "pre_")
            self.trunk = _seq(units[p:], "trunk_")
            self.mask = MaskBranch(channels, num_pools, r, make_unit, make_head, extra_sums,
                                   naming, f"{name}/mask", f"{name}/trunk/res{p}", pool,
                                   prefix="mask_")
            prev = f"{name}/fusion"
            post = []
            for j in range(1, p + 1):
                uname = name if j == p else f"{name}/post_res{j}"
                post.append(make_unit(channels, channels, 1, uname, prev))
                prev = uname
            self.post = _seq(post, "post_")

    def hybrid_forward(self, F, x):
        x = self.pre(x)
        trunk = self.trunk(x)
        mask = self.mask(x, trunk)
        return self.post(trunk * mask + trunk)
