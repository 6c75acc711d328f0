"""`mxmodels.summary`: rows, MACs by hand-derived formulas, totals against collect_params()."""
import numpy as np
import pytest
import mxnet as mx
from mxnet.gluon import nn

from caffe2mx.mxmodels.summary import summarize, totals


def _tiny():
    net = nn.HybridSequential(prefix="tiny_")
    with net.name_scope():
        net.add(nn.Conv2D(8, 3, padding=1, in_channels=3),           # 8x8 map
                nn.BatchNorm(),
                nn.PReLU(in_channels=8),
                nn.Conv2D(16, 3, strides=2, padding=1, groups=4),    # 4x4 map, grouped
                nn.Activation("relu"),
                nn.MaxPool2D(2),                                      # 2x2 map
                nn.Conv2DTranspose(4, 2, strides=2, in_channels=16), # back to 4x4
                nn.GlobalAvgPool2D(),
                nn.Dense(5))
    net.initialize()
    return net


def _collect_sizes(net):
    params = net.collect_params().values()
    return (sum(int(np.prod(p.shape)) for p in params),
            sum(int(np.prod(p.shape)) for p in params if p.grad_req != "null"))


def test_rows_shapes_and_hand_macs():
    net = _tiny()
    rows = summarize(net, (2, 3, 8, 8))
    assert [r["type"] for r in rows] == ["Conv2D", "BatchNorm", "PReLU", "Conv2D", "Activation",
                                         "MaxPool2D", "Conv2DTranspose", "GlobalAvgPool2D", "Dense"]
    assert [r["output_shape"] for r in rows] == [
        (2, 8, 8, 8), (2, 8, 8, 8), (2, 8, 8, 8), (2, 16, 4, 4), (2, 16, 4, 4), (2, 16, 2, 2),
        (2, 4, 4, 4), (2, 4, 1, 1), (2, 5)]
    macs = [r["macs"] for r in rows]
    assert macs[0] == 8 * 8 * 8 * (3 * 3 * 3)          # C_out*H*W * C_in*kh*kw, per sample
    assert macs[3] == 16 * 4 * 4 * (8 // 4 * 3 * 3)    # grouped: C_in/groups
    assert macs[6] == 16 * 2 * 2 * (4 * 2 * 2)         # transpose: input pixels * C_out*k*k
    assert macs[8] == 5 * 4
    assert macs[1] == macs[2] == macs[4] == macs[5] == macs[7] == 0
    params = [r["params"] for r in rows]
    assert params == [8 * 27 + 8, 4 * 8, 8, 16 * 2 * 9 + 16, 0, 0, 16 * 4 * 4 + 4, 0, 5 * 4 + 5]
    assert rows[1]["trainable"] == 2 * 8               # running mean/var are not trainable


def test_totals_match_collect_params():
    net = _tiny()
    tot = totals(summarize(net, (3, 8, 8)))            # (C, H, W) means N = 1
    assert (tot["params"], tot["trainable"]) == _collect_sizes(net)
    assert tot["layers"] == 9


class _Twice(nn.HybridBlock):
    """Calls one Dense twice and a second Dense that shares the first one's parameters."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.fc = nn.Dense(6, in_units=6)
            self.fc_shared = nn.Dense(6, in_units=6, params=self.fc.params)

    def hybrid_forward(self, F, x):
        return self.fc_shared(self.fc(self.fc(x)))


def test_shared_parameters_counted_once():
    net = _Twice()
    net.initialize()
    rows = summarize(net, (1, 6, 1, 1))
    assert len(rows) == 3
    assert [r["params"] for r in rows] == [42, 0, 0]
    assert [r["shared"] for r in rows] == [0, 42, 42]
    assert [r["macs"] for r in rows] == [36, 36, 36]   # every call still does its work
    assert totals(rows)["params"] == _collect_sizes(net)[0] == 42


def test_hybridized_model_is_summarized_and_restored():
    net = _tiny()
    x = mx.nd.random.uniform(shape=(1, 3, 8, 8))
    reference = net(x).asnumpy()
    plain = summarize(net, (1, 3, 8, 8))
    net.hybridize()
    net(x)
    hybrid = summarize(net, (1, 3, 8, 8))
    assert hybrid == plain
    assert net._active
    np.testing.assert_allclose(net(x).asnumpy(), reference, rtol=1e-5, atol=1e-6)


def test_uninitialized_model_gets_initialized():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 1), nn.Dense(3))
    tot = totals(summarize(net, (1, 2, 5, 5)))
    assert tot["params"] == (4 * 2 + 4) + (3 * 100 + 3)
    assert tot["macs"] == 4 * 25 * 2 + 3 * 100


@pytest.mark.parametrize("name,shape", [("cifar_atac_resnet", (1, 3, 32, 32)),
                                        ("cifar_aff_resnet32", (1, 3, 32, 32))])
def test_zoo_model_totals(name, shape):
    from caffe2mx.mxmodels import get_model
    net = get_model(name)
    net.initialize()
    rows = summarize(net, shape)
    assert (totals(rows)["params"], totals(rows)["trainable"]) == _collect_sizes(net)
    assert all(set(r) >= {"name", "type", "output_shape", "params", "macs"} for r in rows)
