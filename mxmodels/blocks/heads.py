"""Classifier and embedding heads shared by the mxmodels families."""
from mxnet.gluon import nn


class ClassifierHead(nn.HybridBlock):
    """ImageNet/CIFAR head: optional BN-act (for pre-activation trunks), global average pool, FC.

    `pre_act` is `None` for post-activation trunks whose output is already activated, or a
    factory returning the activation block (e.g. ``lambda: nn.Activation('relu')``).
    """

    def __init__(self, classes=1000, pre_act=None, in_channels=0, bn_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            if pre_act is not None:
                self.bn = nn.BatchNorm(in_channels=in_channels, **(bn_kwargs or {}))
                self.act = pre_act()
            else:
                self.bn = self.act = None
            self.pool = nn.GlobalAvgPool2D()
            self.fc = nn.Dense(classes)

    def hybrid_forward(self, F, x):
        if self.bn is not None:
            x = self.act(self.bn(x))
        return self.fc(self.pool(x))


class EmbeddingHead(nn.HybridBlock):
    """insightface "Option-E" face embedding head (`get_fc1` with fc_type 'E').

    BN `bn1` (eps 2e-5) -> Dropout(0.4) -> FC `pre_fc1` over the whole flattened 7x7 map ->
    BN `fc1` with fix_gamma=True (gamma pinned to 1, so it is not trainable). The FC sees the
    spatial map, not a pooled vector: for a 7x7x2048 trunk it alone holds 51.38M weights.
    Parameter names keep insightface's prefixes (`bn1_`, `pre_fc1_`, `fc1_`) under this block's
    prefix so converted insightface checkpoints map one to one.
    """

    def __init__(self, emb_size=512, dropout=0.4, eps=2e-5, momentum=0.9, in_channels=0,
                 **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.bn1 = nn.BatchNorm(epsilon=eps, momentum=momentum, in_channels=in_channels,
                                    prefix="bn1_")
            self.dropout = nn.Dropout(dropout) if dropout > 0 else None
            self.pre_fc1 = nn.Dense(emb_size, prefix="pre_fc1_")
            self.fc1 = nn.BatchNorm(epsilon=eps, momentum=momentum, scale=False,
                                    in_channels=emb_size, prefix="fc1_")

    def hybrid_forward(self, F, x):
        x = self.bn1(x)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.fc1(self.pre_fc1(x))
