"""Attention-56 (upstream original) with init-weights weights: every blob of the converted
MXNet model against the float64 NumPy reference, through `verify`'s own run.

Per layer (each MXNet layer fed the reference's values of its bottoms) every blob must
agree within 1e-5, and within the tolerance float32 gives that layer. End to end, float32
rounding compounds through ~170 layers (BN subtracting means amplifies it: measured 2.4e-4
of a blob's largest value at a sigmoid mask, the same order for the NumPy reference itself
run in float32), so the free-running MXNet run is held to its float32 bound at every blob
(metrics.drift_bound: a multiple of the NumPy float32 run's own drift there) and to 1e-3;
the output probabilities agree within 1e-4.
"""
import numpy as np
import pytest

from caffe2mx.converter.pipeline import read_net
from caffe2mx.seeding import write_init_weights
from caffe2mx.verification import verify
from caffe2mx.verify.metrics import compare
from caffe2mx.verify.mxnet_run import run_blobs
from caffe2mx.verify.numpy_ref import forward

from conftest import UPSTREAM, need_shared


@pytest.fixture(scope="module")
def attention56(tmp_path_factory):
    proto = need_shared(UPSTREAM / "Attention-56-deploy.prototxt")
    weights = tmp_path_factory.mktemp("a56") / "a56.caffemodel"
    write_init_weights(read_net(proto), weights, seed=3)
    return proto, weights, verify(proto, str(weights), input_seed=7)


def test_every_layer_matches_reference(attention56):
    _, _, run = attention56
    rows = [r for r in run.outcome.rows if r.layer]
    assert len(rows) >= len(run.graph.nodes) - 1
    worst = max((r.diff.max_rel, r.version) for r in rows)
    assert worst[0] <= 1e-5, worst
    assert all(r.diff.max_rel <= r.rtol for r in rows)


def test_end_to_end_drift_is_float32_rounding(attention56):
    proto, weights, run = attention56
    o = run.outcome
    assert o.passed, [(r.version, r.status) for r in o.rows if not r.passed][:5]
    drift = [r for r in o.rows if r.layer]
    assert all(r.drift.max_rel <= r.drift_bound for r in drift)
    assert max(r.drift.max_rel for r in drift) <= 1e-3
    # the output, read from the whole converted symbol as a user runs it, not piece by piece
    from caffe2mx.api import convert
    conv = convert(proto, str(weights))
    x = run.inputs["data"]
    got = run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, {"data": x}, blobs=["cls"])
    ref = forward(conv.net.graph, {"data": x}, dtype=np.float64).blobs["cls"]
    assert got["cls"].shape == (1, 1000)
    assert compare(got["cls"], ref).max_rel <= 1e-4
