"""The corpus's LRCN captioning deploy net (BVLC coco_caption: Embed, then two LSTMs on the
sentence's cont, the second with the image features as its static input, an axis-2
InnerProduct and a Softmax over axis 2): convert, verify against the NumPy reference,
export to ONNX, ONNX Runtime equal to MXNet.

The net also needs Embed, another layer family: until that type exists the test skips with
the converter's own error as the reason (and fails if the error names any other type). The
file's 1000 streams are cut to 2 with input shapes so the run stays quick; the weights keep
the file's full size (seeded, ~29M values)."""
import numpy as np
import pytest

import caffe2mx
from caffe2mx.converter.errors import ModelErrors
from caffe2mx.verify.metrics import compare
from caffe2mx.verify.mxnet_run import run_blobs

from conftest import CORPUS, need_shared

LRCN = CORPUS / "lrcn_word_to_preds.prototxt"
STREAMS = 2
SHAPES = {"cont_sentence": (1, STREAMS), "input_sentence": (1, STREAMS), "image_features": (STREAMS, 1000)}
LATER = {"Embed"}  # types of other families this net needs


def _inputs(seed):
    rng = np.random.default_rng(seed)
    return {"cont_sentence": np.array([[0, 1][:STREAMS]], np.float32),
            "input_sentence": rng.integers(0, 8801, (1, STREAMS)).astype(np.float32),  # word indices
            "image_features": rng.standard_normal((STREAMS, 1000)).astype(np.float32)}


def test_lrcn_word_to_preds_converts_verifies_and_exports(tmp_path):
    need_shared(LRCN)
    try:
        net = caffe2mx.read_net(str(LRCN), SHAPES)
    except ModelErrors as exc:
        missing = {e.layer_type for e in exc.errors if "unsupported layer type" in e.message}
        if missing and missing <= LATER and len(missing) == len(exc.errors):
            pytest.skip(f"waits for another family's layer type: {exc}")
        raise
    x = tmp_path / "inputs.npz"
    np.savez(x, **_inputs(0))
    run = caffe2mx.verify(str(LRCN), input=str(x), input_shapes=SHAPES)
    assert run.outcome.passed, run.outcome
    conv = caffe2mx.convert(net)
    pytest.importorskip("onnxruntime")
    from caffe2mx.converter.onnx_export import run_onnx_blobs
    model = caffe2mx.export_onnx(conv, output=tmp_path / "lrcn.onnx")
    inputs = _inputs(1)
    got = run_onnx_blobs(model, inputs, blobs=[])["probs"]
    want = run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, inputs, blobs=["probs"])["probs"]
    assert got.shape == (1, STREAMS, 8801)
    assert compare(got, want).max_abs <= 1e-6
