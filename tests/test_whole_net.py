"""Attention-56 (upstream original) with init-weights weights: every blob of the converted
MXNet model against the float64 NumPy reference.

Per layer (each MXNet layer fed the reference's values of its bottoms) every blob must
agree within 1e-5. End to end, float32 rounding compounds through ~170 layers (BN
subtracting means amplifies it: measured 2.4e-4 of a blob's largest value at a sigmoid
mask, and the same order for the NumPy reference itself run in float32). So end to end the
MXNet run is held to no more than twice the NumPy float32 drift (and 1e-3 absolutely):
the conversion must add nothing beyond float32 arithmetic. The output probabilities
agree within 1e-4.
"""
import numpy as np
import pytest

import caffe2mx
from caffe2mx.converter.pipeline import read_net
from caffe2mx.seeding import write_init_weights
from caffe2mx.verify.metrics import compare
from caffe2mx.verify.mxnet_run import run_blobs, run_teacher_forced
from caffe2mx.verify.numpy_ref import forward

from conftest import UPSTREAM, need_shared


@pytest.fixture(scope="module")
def attention56(tmp_path_factory):
    proto = need_shared(UPSTREAM / "Attention-56-deploy.prototxt")
    weights = tmp_path_factory.mktemp("a56") / "a56.caffemodel"
    write_init_weights(read_net(proto), weights, seed=3)
    conv = caffe2mx.convert(proto, weights)
    x = np.random.default_rng(7).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32)
    ref64 = forward(conv.net.graph, {"data": x}, dtype=np.float64)
    return conv, x, ref64


def test_every_layer_matches_reference(attention56):
    conv, _, ref64 = attention56
    got = run_teacher_forced(conv.net, ref64.versions)
    assert len(got) >= len(conv.net.graph.nodes) - 1
    worst = max((compare(v, ref64.versions[k]).max_rel, k) for k, v in got.items())
    assert worst[0] <= 1e-5, worst


def test_end_to_end_drift_is_float32_rounding(attention56):
    conv, x, ref64 = attention56
    got = run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, {"data": x})
    ref32 = forward(conv.net.graph, {"data": x}, dtype=np.float32)
    assert set(got) == set(ref64.blobs)

    def scaled(a, b):
        return float(np.abs(np.asarray(a, np.float64) - b).max() / max(np.abs(b).max(), 1e-30))

    mx_drift = max(scaled(got[b], ref64.blobs[b]) for b in got)
    np_drift = max(scaled(ref32.blobs[b], ref64.blobs[b]) for b in got)
    assert mx_drift <= 2 * np_drift + 1e-6, (mx_drift, np_drift)
    assert mx_drift <= 1e-3, mx_drift
    out = conv.name_map["outputs"]["cls"]
    assert got["cls"].shape == (1, 1000) and out
    assert compare(got["cls"], ref64.blobs["cls"]).max_rel <= 1e-4
