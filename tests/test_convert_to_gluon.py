"""`caffe2mx convert --to-gluon NAME`: the Gluon model gets the conversion's own weights."""
import subprocess
import sys

import mxnet as mx
import numpy as np

from caffe2mx.mxmodels import get_model
from caffe2mx.verify.metrics import compare

from conftest import REPO

PROTO = REPO / "prototxts" / "attention56.prototxt"
CLI = [sys.executable, "-m", "caffe2mx", "convert"]


def test_gluon_params_compute_what_the_converted_symbol_computes(tmp_path, monkeypatch):
    prefix = tmp_path / "a56"
    r = subprocess.run(CLI + [str(PROTO), "-o", str(prefix), "--to-gluon", "attention56", "-q"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a56-0000.params", "a56-gluon.params",
                                                          "a56-namemap.json", "a56-symbol.json"]
    x = mx.nd.array(np.random.default_rng(0).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32))
    model = get_model("attention56")
    model.load_parameters(str(tmp_path / "a56-gluon.params"))
    probs = mx.nd.softmax(model(x)).asnumpy()
    sym, args, auxs = mx.model.load_checkpoint(str(prefix), 0)
    monkeypatch.setenv("MXNET_SUBGRAPH_BACKEND", "NONE")  # the same unfused kernels as Gluon's
    ex = sym.bind(mx.cpu(), args=dict(args, data=x), aux_states=auxs, grad_req="null")
    expected = ex.forward(is_train=False)[0].asnumpy()
    # Weights are mapped exactly (test_mxmodels_attention checks the logits at 1e-5); Gluon's
    # CachedOp and the executor round differently in float32 over 56 layers (~5e-6 on the
    # logits), which the softmax turns into ~6e-5 relative on small probabilities.
    assert compare(probs, expected).max_rel <= 1e-4


def test_mismatched_gluon_model_is_a_clear_error_and_writes_nothing(tmp_path):
    r = subprocess.run(CLI + [str(PROTO), "-o", str(tmp_path / "a56"), "--to-gluon", "attention92"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "attention92" in r.stderr and str(PROTO) in r.stderr
    assert list(tmp_path.iterdir()) == []
