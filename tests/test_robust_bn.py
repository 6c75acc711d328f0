"""The fork's BN with negative inverse standard deviations: y = (x - mean) * inv_std * scale
+ shift must hold for either sign (the conversion folds the sign into gamma), checked against
the NumPy reference of Caffe's semantics and against the formula itself."""
import numpy as np
import pytest

import caffe2mx
from caffe2mx.converter.layers.norm import fork_bn_to_mxnet

from test_bad_inputs import write_model
from test_robust_cli import write

NET = '''name: "bn"
input: "data"
input_shape { dim: 2 dim: 6 dim: 3 dim: 3 }
layer { name: "bn" type: "BN" bottom: "data" top: "bn" bn_param { eps: 1e-5 } }
'''
#: one per channel: negative, negative beyond 1/sqrt(eps), zero, positive, positive beyond, tiny negative
INV_STD = np.array([-2.0, -800.0, 0.0, 0.7, 500.0, -1e-3], np.float32)


def formula(x, scale, shift, mean, inv):
    view = lambda v: v.reshape(1, -1, 1, 1)  # noqa: E731
    return (x.astype(np.float64) - view(mean)) * view(inv) * view(scale) + view(shift)


def test_the_folded_parameters_reproduce_the_formula():
    rng = np.random.default_rng(0)
    scale, shift, mean = (rng.standard_normal(6) for _ in range(3))
    gamma, beta, mu, var, adjusted = fork_bn_to_mxnet(scale, shift, mean, INV_STD, eps=1e-5)
    assert adjusted == 3  # the channels beyond 1/sqrt(eps), whatever their sign, and the zero one
    x = rng.standard_normal((2, 6, 3, 3))
    view = lambda v: np.asarray(v, np.float64).reshape(1, -1, 1, 1)  # noqa: E731
    mxnet_math = (x - view(mu)) / np.sqrt(view(var) + 1e-5) * view(gamma) + view(beta)
    np.testing.assert_allclose(mxnet_math, formula(x, scale, shift, mean, INV_STD), rtol=1e-5, atol=1e-5)


def test_negative_inverse_std_converts_exactly(tmp_path):
    """The converted model, run by MXNet, against the NumPy reference and the formula."""
    import mxnet as mx
    rng = np.random.default_rng(1)
    scale = rng.uniform(0.5, 1.5, 6).astype(np.float32)
    shift, mean = (rng.standard_normal(6).astype(np.float32) for _ in range(2))
    blobs = [b.reshape(1, 6, 1, 1) for b in (scale, shift, mean, INV_STD)]
    p = write(tmp_path, "net.prototxt", NET)
    w = write_model(tmp_path / "w.caffemodel", {"bn": blobs}, text=NET)
    run = caffe2mx.verify(str(p), str(w), reference="numpy")
    assert run.outcome.passed, [(r.blob, r.status) for r in getattr(run.outcome, "rows", [])]
    conv = caffe2mx.convert(p, w)
    x = rng.standard_normal((2, 6, 3, 3)).astype(np.float32)
    y = conv.to_gluon()(mx.nd.array(x)).asnumpy()
    np.testing.assert_allclose(y, formula(x, scale, shift, mean, INV_STD), rtol=1e-4, atol=1e-4)
    assert np.any(np.sign(y[:, 0] - shift[0]) != np.sign(x[:, 0] - mean[0]))  # the sign of channel 0 does flip


@pytest.mark.parametrize("mode", ["variance"])
def test_variance_reading_is_unchanged(mode):
    """--bn-blob3 variance reads blob 3 as a variance: 1/sqrt(var + eps), positive."""
    var = np.array([0.5, 2.0, 0.0], np.float64)
    gamma, _, _, v, adjusted = fork_bn_to_mxnet(np.ones(3), np.zeros(3), np.zeros(3), var, eps=1e-5, blob3_mode=mode)
    np.testing.assert_allclose(gamma, 1.0)
    np.testing.assert_allclose(v, var, rtol=1e-6)
    assert adjusted == 0
