"""CRU-Net (ImageNet, paper Table 1) and the modified face CRU-Net (bruinxiong `fcrunet.py`).

Spec tables map depth to stages: ("resnext", units, channels) or
("cru", units, channels, width R, units per shared set or None for one set per stage).
"""
from mxnet import initializer
from mxnet.gluon import nn

from .blocks.cru import CRUUnit, FaceCRUUnit, FaceResNeXtUnit, cru_stage
from .blocks.heads import ClassifierHead, EmbeddingHead
from .blocks.stems import add_imagenet_stem
from .blocks.residual import ResNeXtUnit
from .registry import FACE_RAW, IMAGENET, register_model

IMAGENET_SPECS = {
    56: [("resnext", 3, 256), ("resnext", 4, 512), ("cru", 6, 1024, 640, None),
         ("resnext", 3, 2048)],
    116: [("resnext", 3, 256), ("cru", 6, 512, 352, None), ("cru", 18, 1024, 704, 6),
          ("resnext", 3, 2048)],
}

# bruinxiong: R = 2*k_D in stage 3 and 4*k_D in stage 4, a new shared set every 6 units.
FACE_SPECS = {
    56: dict(units=(3, 4, 6, 3), k_d=320),
    116: dict(units=(3, 6, 18, 3), k_d=176),
}


class CRUNet(nn.HybridBlock):
    """ImageNet CRU-Net: 7x7/2 stem + max-pool, post-activation ResNeXt stages (32 groups,
    width C/2, stride on the grouped 3x3; `blocks.residual.ResNeXtUnit`) and pre-activation CRU
    stages. A CRU stage ends with BN-ReLU so that the next stage, like every post-activation
    stage, receives an activated map."""

    def __init__(self, depth, classes=1000, **kwargs):
        super().__init__(**kwargs)
        if depth not in IMAGENET_SPECS:
            raise ValueError(f"CRU-Net depth must be one of {sorted(IMAGENET_SPECS)}; got {depth}")
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            in_channels = add_imagenet_stem(self.features)
            for i, (kind, units, channels, *cru) in enumerate(IMAGENET_SPECS[depth]):
                stride = 1 if i == 0 else 2
                prefix = f"stage{i + 2}_"
                if kind == "cru":
                    stage = cru_stage(CRUUnit, units, channels, cru[0], in_channels, stride,
                                      group_size=cru[1], prefix=prefix)
                    with stage.name_scope():
                        stage.add(nn.BatchNorm(in_channels=channels, prefix="post_bn_"),
                                  nn.Activation("relu", prefix="post_relu_"))
                else:
                    stage = nn.HybridSequential(prefix=prefix)
                    with stage.name_scope():
                        for j in range(units):
                            stage.add(ResNeXtUnit(in_channels if j == 0 else channels, channels,
                                                  stride if j == 0 else 1, groups=32,
                                                  prefix=f"unit{j + 1}_"))
                self.features.add(stage)
                in_channels = channels
            self.head = ClassifierHead(classes, prefix="head_")

    def hybrid_forward(self, F, x):
        return self.head(self.features(x))


class FaceCRUNet(nn.HybridBlock):
    """Face CRU-Net on 112x112 (section 3): input scaled by (x-127.5)/128, 3x3/1 conv 64 + BN +
    PReLU (no max-pool), face ResNeXt stages 2 and 5, face CRU stages 3 and 4 (R = 2k_D, 4k_D),
    every stage's first unit strided (112 -> 56 -> 28 -> 14 -> 7), Option-E 512-d head."""

    def __init__(self, depth, emb_size=512, normalize_input=True, **kwargs):
        super().__init__(**kwargs)
        if depth not in FACE_SPECS:
            raise ValueError(f"face CRU-Net depth must be one of {sorted(FACE_SPECS)}; got {depth}")
        spec = FACE_SPECS[depth]
        units, k_d = spec["units"], spec["k_d"]
        nk = dict(epsilon=1e-3, momentum=0.9)
        self._normalize = normalize_input
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            self.features.add(nn.Conv2D(64, 3, 1, 1, use_bias=False, in_channels=3),
                              nn.BatchNorm(in_channels=64, **nk),
                              nn.PReLU(initializer.Constant(0.25), in_channels=64))
            widths = (256, 512, 1024, 2048)
            in_channels = 64
            for i, (n, channels) in enumerate(zip(units, widths)):
                prefix = f"stage{i + 2}_"
                if i in (1, 2):
                    stage = cru_stage(FaceCRUUnit, n, channels, k_d * 2 * i, in_channels, 2,
                                      group_size=6, prefix=prefix)
                else:
                    stage = nn.HybridSequential(prefix=prefix)
                    with stage.name_scope():
                        for j in range(n):
                            stage.add(FaceResNeXtUnit(channels, in_channels if j == 0 else channels,
                                                      2 if j == 0 else 1, prefix=f"unit{j + 1}_"))
                self.features.add(stage)
                in_channels = channels
            self.head = EmbeddingHead(emb_size, in_channels=in_channels, prefix="head_")

    def hybrid_forward(self, F, x):
        if self._normalize:
            x = (x - 127.5) * 0.0078125
        return self.head(self.features(x))


@register_model(**IMAGENET)
def cru_net56(classes=1000, **kwargs):
    """CRU-Net-56 @x14 (32x4d): ResNeXt stages 2, 3, 5; stage 4 = 6 CRUs, R=640, one shared set.

    Parameters (1000 classes): 25.540M conv+fc, 25.611M trainable, 25.682M all (with BN running
    statistics); the shared bases count once. The published 25.5M is the conv+fc count rounded
    (trainable rounds to 25.6M); for CRU-Net-116 only the trainable count rounds to the
    published figure, so the paper's convention is not consistent between the two. MACs at 224x224: 4.838G (published 4.9 GFLOPs).
    """
    return CRUNet(56, classes, prefix="cru_net56_", **kwargs)


@register_model(**IMAGENET)
def cru_net116(classes=1000, **kwargs):
    """CRU-Net-116 @x28x14: stage 3 = 6 CRUs (R=352, one set), stage 4 = 18 CRUs (R=704, three
    sets of 6); ResNeXt stages 2 and 5.

    Parameters (1000 classes): 43.519M conv+fc, 43.657M trainable (published 43.7M, which this
    matches when rounded, not truncated), 43.795M all.
    MACs at 224x224: 10.98G; the 13.3 GFLOPs read from the paper's table image does not
    reproduce from this layout.
    """
    return CRUNet(116, classes, prefix="cru_net116_", **kwargs)


@register_model(**FACE_RAW)
def face_cru_net56(emb_size=512, **kwargs):
    """Modified face CRU-Net-56 (bruinxiong fcrunet, R=640/1280 — not the paper's widths),
    112x112 input, 512-d Option-E embedding.

    Parameters: 89.711M conv+fc and 89.906M with BN gamma/beta and PReLU alphas (facts: 89.71M,
    89.91M), 90.056M all; 51.38M of it is the embedding FC. MACs at 112x112: 14.63G.
    """
    return FaceCRUNet(56, emb_size, prefix="face_cru_net56_", **kwargs)


@register_model(**FACE_RAW)
def face_cru_net116(emb_size=512, **kwargs):
    """Modified face CRU-Net-116 (R=352/704, stage 4 in three shared sets of 6), 112x112 input,
    512-d Option-E embedding. Parameters: 93.499M conv+fc, 93.801M with BN gamma/beta and PReLU
    alphas (facts: 93.50M, 93.80M), 94.031M all. MACs at 112x112: 13.36G."""
    return FaceCRUNet(116, emb_size, prefix="face_cru_net116_", **kwargs)
