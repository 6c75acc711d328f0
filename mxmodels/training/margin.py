"""insightface's combined margin head over a face embedding (ArcFace, CosFace, SphereFace).

logits = s * cos(theta_j) for every class j, except the target class y:
s * (cos(m1 * theta_y + m2) - m3), where cos(theta_j) = <e/|e|, W_j/|W_j|>.
ArcFace is (m1, m2, m3) = (1, 0.5, 0), CosFace (1, 0, 0.35), SphereFace-like (1.35, 0, 0),
insightface's "combined" (1, 0.3, 0.2); s = 64 (sample_config.py). As in insightface's
combined-margin branch, theta is taken from arccos of the clipped cosine and the margin is
applied without the easy-margin threshold; the weight is named `fc7_weight`, insightface's
name, so checkpoints carry it under the same key.
"""
from mxnet import initializer
from mxnet.gluon import HybridBlock

ARCFACE = (1.0, 0.5, 0.0)
COSFACE = (1.0, 0.0, 0.35)


class MarginHead(HybridBlock):
    """(embedding, label) -> margin logits, shape (batch, classes)."""

    def __init__(self, classes, emb_size, s=64.0, m=ARCFACE, **kwargs):
        super().__init__(**kwargs)
        if len(m) != 3:
            raise ValueError(f"margin needs (m1, m2, m3), got {m}")
        self.classes = int(classes)
        self.s = float(s)
        self.m1, self.m2, self.m3 = (float(v) for v in m)
        with self.name_scope():
            self.weight = self.params.get("fc7_weight", shape=(self.classes, int(emb_size)),
                                          init=initializer.Normal(0.01))

    def _cosine(self, F, x, weight):
        w = F.L2Normalization(weight, mode="instance")
        e = F.L2Normalization(x, mode="instance")
        return F.FullyConnected(e, w, no_bias=True, num_hidden=self.classes)

    def hybrid_forward(self, F, x, label, weight):
        cos = self._cosine(F, x, weight)
        if (self.m1, self.m2, self.m3) == (1.0, 0.0, 0.0):
            return cos * self.s
        target = F.pick(cos, label, axis=1)
        theta = F.arccos(F.clip(target, -1.0 + 1e-7, 1.0 - 1e-7))
        with_margin = F.cos(theta * self.m1 + self.m2) - self.m3
        delta = F.broadcast_mul(F.one_hot(label, self.classes), F.expand_dims(with_margin - target, 1))
        return (cos + delta) * self.s

