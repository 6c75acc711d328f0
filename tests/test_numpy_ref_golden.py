"""The NumPy reference against real Caffe's per-layer golden dumps (../shared/fixtures/caffe-golden).

Every blob Caffe held after forward() (inputs, in-place results, automatic split copies)
is compared. Caffe ran in float32, so its absolute error grows with the magnitude of the
values a layer sums, not with the magnitude of each result: an output near zero made of
O(1) terms is only known to ~1e-7. The relative error therefore uses a floor tied to the
blob's scale: |ref - caffe| / max(|caffe|, FLOOR_ABS, FLOOR_FRAC * max|caffe blob|).
With FLOOR_FRAC 0.1 and RTOL 1e-5 the absolute slack is 1e-6 of the blob's largest value
(about 8 float32 ulps there). NaN and -FLT_MAX positions must match exactly.
"""
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from caffe2mx.converter.caffemodel import read_caffemodel
from caffe2mx.converter.errors import ModelError
from caffe2mx.converter.graph import build_graph
from caffe2mx.converter.prototxt import parse_prototxt_text, read_prototxt
from caffe2mx.verify.numpy_ref import (UnsupportedLayerType, forward, register,
                                       supported_types)
from caffe2mx.verify.numpy_ref.call import FLT_MAX
from conftest import GOLDEN, golden_cases


Tol = namedtuple("Tol", "rtol floor_abs floor_frac")
TOLERANCES = {
    np.float64: Tol(rtol=1e-5, floor_abs=1e-3, floor_frac=0.1),
    np.float32: Tol(rtol=1e-5, floor_abs=1e-3, floor_frac=0.1),
}


def _load(case):
    folder = GOLDEN / case["folder"]
    parsed = read_prototxt(folder / "net.prototxt")
    weights_file = folder / "weights.caffemodel"
    weights = read_caffemodel(weights_file) if weights_file.is_file() else {}
    dump = np.load(folder / "blobs.npz")
    caffe = {name: dump[name] for name in dump.files}
    return parsed, build_graph(parsed), weights, caffe


def relative_error(ref, caffe, tol):
    caffe = caffe.astype(np.float64)
    if caffe.size == 0:
        return 0.0
    floor = max(tol.floor_abs, tol.floor_frac * float(np.abs(caffe).max()))
    return float((np.abs(ref - caffe) / np.maximum(np.abs(caffe), floor)).max())


def assert_blobs_match(ref_blobs, caffe, tol, label):
    assert set(ref_blobs) == set(caffe), (f"{label}: blob names differ; only in reference: "
                                          f"{sorted(set(ref_blobs) - set(caffe))}, only in Caffe: "
                                          f"{sorted(set(caffe) - set(ref_blobs))}")
    worst = {}
    for name, want in caffe.items():
        got = ref_blobs[name]
        assert got.shape == want.shape, f"{label}: blob '{name}' shape {got.shape} != Caffe {want.shape}"
        special = np.isnan(want) | (want == -FLT_MAX)
        assert np.array_equal(special, np.isnan(got) | (got == -FLT_MAX)), \
            f"{label}: blob '{name}': NaN/-FLT_MAX positions differ from Caffe"
        assert np.array_equal(want[special], got[special], equal_nan=True)
        worst[name] = relative_error(np.where(special, 0, got), np.where(special, 0, want), tol)
    bad = {k: v for k, v in worst.items() if v > tol.rtol}
    assert not bad, f"{label}: relative error above {tol.rtol}: {bad}"
    return worst


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", golden_cases())
def test_golden_case(case, dtype):
    parsed, graph, weights, caffe = _load(case)
    inputs = {name: caffe[name] for name in case["inputs"]}
    result = forward(graph, inputs, weights, dtype=dtype, splits=True)
    assert_blobs_match(result.blobs, caffe, TOLERANCES[dtype], case["folder"])


@pytest.mark.parametrize("case", golden_cases())
def test_golden_case_with_bound_weights(case):
    """The same numbers when the weights come bound on the graph (converter.weights)."""
    try:
        from caffe2mx.converter.shapes import infer_shapes
        from caffe2mx.converter.weights import bind_weights
    except ImportError as exc:
        pytest.skip(f"converter weight binding not available: {exc}")
    parsed, graph, weights, caffe = _load(case)
    if weights:
        graph = bind_weights(graph, infer_shapes(graph), weights)
    result = forward(graph, {name: caffe[name] for name in case["inputs"]}, splits=True)
    assert_blobs_match(result.blobs, caffe, TOLERANCES[np.float64], case["folder"])


def _net(text):
    return build_graph(parse_prototxt_text(text))


POOL_NET = """
input: "x" input_shape { dim: 1 dim: 2 dim: 10 dim: 10 }
layer { name: "p" type: "Pooling" bottom: "x" top: "p"
        pooling_param { pool: %s kernel_size: 2 stride: 5 } }
"""


@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_pooling_window_wholly_outside(method):
    """Ceil rounding with stride > kernel and no pad: the third window starts at row 10 of 10."""
    x = np.random.default_rng(1).uniform(-1, 1, (1, 2, 10, 10))
    y = forward(_net(POOL_NET % method), {"x": x}).blobs["p"]
    assert y.shape == (1, 2, 3, 3)
    windows = x[:, :, :10, :10].reshape(1, 2, 2, 5, 2, 5)[:, :, :, :2, :, :2]
    inner = windows.max(axis=(3, 5)) if method == "MAX" else windows.mean(axis=(3, 5))
    np.testing.assert_allclose(y[:, :, :2, :2], inner, rtol=1e-12)
    edge = np.concatenate([y[:, :, 2, :].ravel(), y[:, :, :2, 2].ravel()])
    if method == "MAX":
        assert np.all(edge == -FLT_MAX)
    else:
        assert np.all(np.isnan(edge))


def test_bn_blob3_variance_option():
    if not (GOLDEN / "bn_frozen").is_dir():
        pytest.skip(f"golden fixtures not found at {GOLDEN}")
    _, graph, weights, caffe = _load({"folder": "bn_frozen"})
    scale, shift, mean, var = (b.astype(np.float64).reshape(1, -1, 1, 1) for b in weights["bn"].blobs)
    x = caffe["data"].astype(np.float64)
    eps = graph.node("bn").param.bn_param.eps
    want = (x - mean) / np.sqrt(var + eps) * scale + shift
    got = forward(graph, {"data": caffe["data"]}, weights, bn_blob3="variance").blobs["bn"]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    with pytest.raises(ValueError, match="bn_blob3"):
        forward(graph, {"data": caffe["data"]}, weights, bn_blob3="var")


def test_registering_a_type_twice_fails():
    with pytest.raises(ValueError, match="has two NumPy references"):
        register("ReLU")(lambda call: [call.bottoms[0]])


def test_unknown_type_lists_every_supported_type():
    graph = _net('input: "x" input_shape { dim: 1 dim: 3 }\n'
                 'layer { name: "a" type: "AlsoMadeUp" bottom: "x" top: "a" }\n'
                 'layer { name: "b" type: "MadeUp" bottom: "a" top: "b" }')
    with pytest.raises(UnsupportedLayerType) as info:
        forward(graph, {"x": np.zeros((1, 3))})
    message = str(info.value)
    assert "'MadeUp'" in message and "'AlsoMadeUp'" in message and "layer 'b'" in message
    assert all(t in message for t in supported_types())


def test_misshapen_weights_name_the_layer():
    graph = _net('input: "x" input_shape { dim: 1 dim: 2 dim: 5 dim: 5 }\n'
                 'layer { name: "conv9" type: "Convolution" bottom: "x" top: "y"\n'
                 '        convolution_param { num_output: 3 kernel_size: 3 bias_term: false } }')
    x = np.zeros((1, 2, 5, 5))
    with pytest.raises(ModelError, match="conv9.*needs \\[3, 2, 3, 3\\]"):
        forward(graph, {"x": x}, {"conv9": [np.zeros((3, 2, 2, 2))]})
    with pytest.raises(ModelError, match="conv9.*has none"):
        forward(graph, {"x": x})
    legacy = type("Legacy", (), {"blobs": (np.ones((1, 1, 3, 18)),), "legacy": (True,)})
    assert forward(graph, {"x": x + 1}, {"conv9": legacy}).blobs["y"].shape == (1, 3, 3, 3)


def test_interp_positions_use_float32_ratio():
    """2 -> 42: float32(1/41) * 41 = 0.99999994, so the last output still leans on index 0."""
    from caffe2mx.verify.numpy_ref.interp import taps
    lo, hi, w_lo, w_hi = taps(2, 42)
    assert (lo[-1], hi[-1]) == (0, 1)
    assert w_hi[-1] == np.float64(np.float32(1) / np.float32(41) * np.float32(41))


def test_batchnorm_batch_statistics_when_not_global():
    graph = _net('input: "x" input_shape { dim: 3 dim: 2 dim: 4 dim: 5 }\n'
                 'layer { name: "bn" type: "BatchNorm" bottom: "x" top: "y"\n'
                 '        batch_norm_param { use_global_stats: false eps: 0.001 } }')
    x = np.random.default_rng(2).normal(1.0, 3.0, (3, 2, 4, 5))
    blobs = [np.full(2, 7.0), np.full(2, 7.0), np.ones(1)]
    y = forward(graph, {"x": x}, {"bn": blobs}).blobs["y"]
    mean, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + np.float32(0.001)), rtol=1e-12)
