"""Real-Caffe goldens for RNN and LSTM (caffe-golden-2: rnn_*, lstm_*, with and without a
mid-sequence restart of one stream): the MXNet conversion, the NumPy reference and ONNX
Runtime each match every blob BVLC Caffe stored, within GOLDEN_RTOL."""
import numpy as np
import pytest

from caffe2mx.converter.caffemodel import read_caffemodel
from caffe2mx.converter.pipeline import convert_net, load_net
from caffe2mx.verify.metrics import GOLDEN_RTOL, compare
from caffe2mx.verify.mxnet_run import run_blobs
from caffe2mx.verify.numpy_ref import forward

from conftest import GOLDEN2, assert_ownership, golden_cases, need_shared

CASES = [c for c in golden_cases(GOLDEN2) if c.values[0] is None or c.values[0]["folder"].startswith(("rnn_", "lstm_"))]


def _check(values, caffe, who):
    compared = 0
    for blob in caffe.files:
        d = compare(values[blob], caffe[blob])
        assert d.shape_ok and d.nonfinite_ok, f"{who}: blob {blob}"
        assert d.max_rel <= GOLDEN_RTOL, f"{who}: blob {blob} max relative error {d.max_rel:.2e}"
        compared += 1
    assert compared == len(caffe.files) >= 3  # x, cont and the output


@pytest.fixture(scope="module", params=CASES)
def golden(request):
    case = request.param
    folder = need_shared(GOLDEN2 / case["folder"])
    conv = convert_net(load_net(folder / "net.prototxt", folder / "weights.caffemodel"))
    caffe = np.load(folder / "blobs.npz")
    inputs = {name: caffe[name] for name in case["inputs"]}
    return case, folder, conv, caffe, inputs


def test_cases_are_all_here():
    if CASES[0].values[0] is None:
        pytest.skip(f"{GOLDEN2} is absent")
    assert sorted(c.values[0]["folder"] for c in CASES) == ["lstm_t3_n2", "lstm_t3_n2_reset", "rnn_t3_n2",
                                                            "rnn_t3_n2_reset"]


def test_mxnet_matches_caffe(golden):
    _, _, conv, caffe, inputs = golden
    assert_ownership(conv)
    _check(run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, inputs), caffe, "MXNet")


def test_numpy_reference_matches_caffe(golden):
    _, folder, conv, caffe, inputs = golden
    ref = forward(conv.net.graph, inputs, weights=read_caffemodel(folder / "weights.caffemodel"))
    _check(ref.blobs, caffe, "NumPy reference")


def test_onnxruntime_matches_caffe(golden):
    pytest.importorskip("onnxruntime")
    from caffe2mx.converter.onnx_export import conversion_to_onnx, run_onnx_blobs
    _, _, conv, caffe, inputs = golden
    got = run_onnx_blobs(conversion_to_onnx(conv), inputs)
    _check({**inputs, **got}, caffe, "ONNX Runtime")


def test_the_reset_cases_depend_on_the_restart(golden):
    """The *_reset goldens restart stream 1 at t = 1: run with the plain cont ([0, 1, 1] for both
    streams) instead, stream 0 is unchanged and stream 1 differs from t = 1 on, so a
    conversion that ignored cont could not pass test_mxnet_matches_caffe."""
    case, _, conv, caffe, inputs = golden
    if not case["folder"].endswith("_reset"):
        pytest.skip("the check runs on the *_reset cases")
    plain = dict(inputs, cont=np.array([[0, 0], [1, 1], [1, 1]], np.float32))
    assert not np.array_equal(plain["cont"], inputs["cont"])
    out = case["outputs"][0]
    got = run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, plain, blobs=[out])[out]
    assert compare(got[:, 0], caffe[out][:, 0]).max_rel <= GOLDEN_RTOL
    assert np.abs(got[1:, 1] - caffe[out][1:, 1]).min() > 1e-4
