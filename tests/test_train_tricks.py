"""Each training trick against an independent computation: mixup, label-smoothed
cross-entropy, the warmup + cosine/step schedule, no-wd selection, last-gamma zeros, and
the margin head against the ArcFace/CosFace formulas."""
import math

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from caffe2mx.mxmodels import get_model
from caffe2mx.mxmodels.blocks.fusion import PreActBasicBlock
from caffe2mx.mxmodels.blocks.residual import FaceBottleneck, PreActBottleneck, ResNeXtUnit
from caffe2mx.mxmodels.training import tricks
from caffe2mx.mxmodels.training.margin import MarginHead
from caffe2mx.mxmodels.training.schedule import WarmupSchedule


def test_mixup_inputs_and_targets():
    rng = np.random.RandomState(0)
    x = rng.normal(size=(4, 3, 2, 2)).astype("float32")
    y = np.array([0, 2, 1, 2])
    lam = 0.3
    mx_x, mx_t = tricks.mixup(mx.nd.array(x), mx.nd.array(y), 3, lam)
    # independent: sample i is mixed with sample n-1-i
    want_x = lam * x + (1 - lam) * x[::-1]
    eye = np.eye(3)
    want_t = lam * eye[y] + (1 - lam) * eye[y[::-1]]
    np.testing.assert_allclose(mx_x.asnumpy(), want_x, rtol=1e-6)
    np.testing.assert_allclose(mx_t.asnumpy(), want_t, rtol=1e-6)
    np.testing.assert_allclose(mx_t.asnumpy().sum(axis=1), 1, rtol=1e-6)


def test_mixup_off_for_the_last_epochs():
    from types import SimpleNamespace
    cfg = SimpleNamespace(mixup=True, epochs=10, mixup_off_epochs=2)
    assert [tricks.mixup_active(cfg, e) for e in range(10)] == [True] * 8 + [False] * 2


def _smoothed_ce(logits, labels, classes, eps):
    """-sum_k q_k log softmax(z)_k with q = (1 - eps) one_hot + eps / K (Szegedy et al.)."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    q = np.full(z.shape, eps / classes)
    q[np.arange(len(labels)), labels] += 1 - eps
    return -(q * logp).sum(axis=1)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_label_smoothed_cross_entropy(eps):
    rng = np.random.RandomState(1)
    logits = rng.normal(0, 3, (6, 5)).astype("float32")
    labels = rng.randint(0, 5, 6)
    targets = tricks.one_hot_targets(mx.nd.array(labels), 5, eps)
    loss = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False)(mx.nd.array(logits), targets)
    np.testing.assert_allclose(loss.asnumpy(), _smoothed_ce(logits, labels, 5, eps), rtol=1e-5)


def test_warmup_then_cosine_values():
    base, warm, total, start = 0.4, 100, 1000, 0.01
    s = WarmupSchedule(base, total, warm, start, "cosine", final_lr=1e-8)
    # linear warmup: lr(t) = start + (base - start) t / warm; cosine: Loshchilov & Hutter
    for t, want in [(0, start), (50, start + (base - start) * 0.5), (99, start + (base - start) * 0.99),
                    (100, base), (550, 1e-8 + (base - 1e-8) * 0.5), (1000, 1e-8)]:
        assert s(t) == pytest.approx(want, rel=1e-9, abs=1e-12), t
    t = 325
    assert s(t) == pytest.approx(1e-8 + (base - 1e-8) * (1 + math.cos(math.pi * 0.25)) / 2, rel=1e-9)


def test_warmup_then_step_values():
    s = WarmupSchedule(0.2, 400, 0, 0.0, "step", steps=[300, 350], factor=0.1)
    assert [s(t) for t in (1, 299, 300, 349, 350, 399)] == pytest.approx([0.2, 0.2, 0.02, 0.02, 0.002, 0.002])


def test_schedule_in_optimizer_follows_updates():
    """The optimizer asks the schedule at its update count (1 for the first step)."""
    s = WarmupSchedule(1.0, 10, 4, 0.0, "cosine")
    p = gluon.Parameter("w", shape=(1,))
    p.initialize(mx.init.Zero())
    trainer = gluon.Trainer([p], "sgd", {"learning_rate": 1.0, "lr_scheduler": s})
    seen = []
    for _ in range(3):
        with mx.autograd.record():
            loss = (p.data() * 2).sum()
        loss.backward()
        trainer.step(1)
        seen.append(trainer.learning_rate)
    assert seen == pytest.approx([0.25, 0.5, 0.75])


def test_no_wd_selects_bn_and_biases():
    net = get_model("cifar_atac_resnet", depth=8)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    params = dict(net.collect_params().items())
    chosen = set(tricks.no_weight_decay(params))
    # independent: every BatchNorm gamma/beta and every bias is registered by its owner
    # under the attribute name gamma, beta or bias
    expected = set()
    def walk(block):
        for attr, p in block._reg_params.items():
            if attr in ("gamma", "beta", "bias"):
                expected.add(p.name)
        for c in block._children.values():
            walk(c)
    walk(net)
    assert chosen == expected and expected
    assert all(params[n].wd_mult == 0 for n in chosen)
    assert all(p.wd_mult == 1 for n, p in params.items() if n not in chosen)


@pytest.mark.parametrize("make, cin", [
    (lambda: ResNeXtUnit(32, 64, stride=2), 32),
    (lambda: PreActBottleneck(32, 64, stride=2), 32),
    (lambda: PreActBasicBlock(16, 16), 16),
    (lambda: FaceBottleneck(32, 64, stride=2), 32),
])
def test_last_gamma_makes_each_unit_its_shortcut(make, cin):
    unit = make()
    unit.initialize(mx.init.Xavier())
    x = mx.nd.random.normal(shape=(2, cin, 8, 8))
    unit(x)
    zeroed = tricks.zero_last_gamma(unit)
    assert len(zeroed) == 1 and not zeroed[0].data().asnumpy().any()
    with mx.autograd.train_mode():
        y = unit(x).asnumpy()
    # independent: the shortcut path alone (identity, projection, or projection + BN), then
    # the unit's post-sum activation if it has one
    with mx.autograd.train_mode():
        if isinstance(unit, ResNeXtUnit):
            want = np.maximum(unit.shortcut(x).asnumpy(), 0)
        elif isinstance(unit, PreActBottleneck):
            pre = mx.nd.relu(unit.bn0(x))
            want = unit.proj(pre).asnumpy()
        elif isinstance(unit, FaceBottleneck):
            want = unit.shortcut(x).asnumpy()
        else:
            want = x.asnumpy()
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_last_gamma_counts_every_residual_unit():
    net = get_model("slim_attention56", widths=(8, 16, 32, 64), stem_width=4)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    # Attention-56 counted from its spec: 3 stage-entry units, 3 units in stage 4, and per
    # module p + t + p = 4 trunk units plus the mask's units, which for the CIFAR layout
    # (2/1/0 mask pools, docs/architectures.md section 2) are 4r+1 = 5, 2r = 2 and 2r = 2
    expected = 3 + 3 + 3 * 4 + (5 + 2 + 2)
    assert len(tricks.zero_last_gamma(net)) == expected


@pytest.mark.parametrize("m", [(1.0, 0.5, 0.0), (1.0, 0.0, 0.35), (1.0, 0.3, 0.2)])
def test_margin_logits_against_formula(m):
    rng = np.random.RandomState(2)
    emb = rng.normal(size=(5, 8)).astype("float32")
    labels = np.array([0, 3, 2, 3, 1])
    head = MarginHead(4, 8, s=64.0, m=m)
    head.initialize(mx.init.Normal(1.0))
    got = head(mx.nd.array(emb), mx.nd.array(labels)).asnumpy()
    w = head.weight.data().asnumpy().astype(np.float64)
    cos = (emb / np.linalg.norm(emb, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=1, keepdims=True)).T
    want = 64.0 * cos
    m1, m2, m3 = m
    for i, y in enumerate(labels):
        # ArcFace paper: s * cos(theta + m); insightface combined: s * (cos(m1 theta + m2) - m3)
        want[i, y] = 64.0 * (math.cos(m1 * math.acos(cos[i, y]) + m2) - m3)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
