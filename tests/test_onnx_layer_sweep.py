"""The per-layer sweep cases of the layer types issue 9 added, exported to ONNX and run in
ONNX Runtime: every blob equals the MXNet run of the same conversion (itself checked against
the NumPy reference by test_layers_sweep), exactly where the values are integers or copies
(ArgMax, Threshold, MAX pooling with its mask), else within 1e-5.

These types brought new ONNX translations (comparisons, where, reductions, gather, tile,
transpose), whose corner cases (ties, -inf, windows past the map) the sweeps hold.
"""
import numpy as np
import pytest

import caffe2mx
from caffe2mx.converter.prototxt import parse_prototxt_text
from caffe2mx.verify.metrics import GOLDEN_RTOL, compare
from caffe2mx.verify.mxnet_run import run_blobs
from sweeps import all_cases
from test_layers_sweep import prepare_case

pytest.importorskip("onnxruntime")

ISSUE9_TYPES = {"ArgMax", "Axpy", "BNLL", "BatchReindex", "ConvolutionDepthwise", "DepthwiseConvolution", "Embed",
                "Im2col", "MVN", "Parameter", "ReLU6", "Reduction", "SPP", "ShuffleChannel", "Silence", "Threshold",
                "Tile"}
EXACT_TYPES = {"ArgMax", "Threshold"}


def _new_behaviour(layer):
    p = layer.pooling_param
    return layer.type in ISSUE9_TYPES or (layer.type == "Pooling" and (len(layer.top) == 2 or p.HasField("ceil_mode")))


CASES = [c for c in all_cases() if any(_new_behaviour(lay) for lay in parse_prototxt_text(c.values[0]).net.layer)]


def _exact(net):
    return {t for lay in net.layer if lay.type in EXACT_TYPES or (lay.type == "Pooling" and len(lay.top) == 2)
            for t in lay.top}


@pytest.mark.parametrize("text,kw", CASES)
def test_onnxruntime_matches_mxnet(tmp_path, request, text, kw):
    from caffe2mx.converter.onnx_export import conversion_to_onnx, run_onnx_blobs
    proto, model, inputs = prepare_case(tmp_path, request.node.callspec.id, text, kw.get("opts"))
    conv = caffe2mx.convert(str(proto), str(model) if model else None)
    got = run_onnx_blobs(conversion_to_onnx(conv), inputs)
    want = run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, inputs)
    exact = _exact(parse_prototxt_text(text).net)
    compared = 0
    for blob, value in got.items():
        if blob not in want or conv.name_map["blobs"].get(blob) in conv.name_map["inputs"].values():
            continue  # a net input no layer rewrote
        assert value.shape == want[blob].shape, f"{blob}: {value.shape} vs MXNet {want[blob].shape}"
        if blob in exact:
            assert np.array_equal(value, want[blob]), f"{blob}: {int((value != want[blob]).sum())} values differ"
        else:
            d = compare(value, want[blob])
            assert d.nonfinite_ok and d.max_rel <= GOLDEN_RTOL, f"{blob}: max_rel {d.max_rel:.2e}"
        compared += 1
    assert compared >= len(conv.name_map["outputs"])
