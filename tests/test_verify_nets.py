"""Small fork-style nets for the verify tests, and the clean-pass check on each.

MINI_ATTENTION is one attention module in the Residual Attention fork's style: BN
layers in place, a mask branch pooled with ceil rounding (16 -> 8; floor would give 7),
an Interp with two bottoms, Sigmoid, Eltwise PROD then SUM, blob names with '/'.
"""
import numpy as np
import pytest

from caffe2mx.cli import main

MINI_ATTENTION = r'''name: "mini-attention"
input: "data"
input_dim: 1
input_dim: 3
input_dim: 16
input_dim: 16
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 bias_term: false } }
layer { name: "conv1/bn" type: "BN" bottom: "conv1" top: "conv1" bn_param { frozen: true } }
layer { name: "conv1/relu" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "A/trunk/conv" type: "Convolution" bottom: "conv1" top: "A/trunk/conv"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 bias_term: false } }
layer { name: "A/trunk/conv/bn" type: "BN" bottom: "A/trunk/conv" top: "A/trunk/conv" bn_param { frozen: true } }
layer { name: "A/trunk/conv/relu" type: "ReLU" bottom: "A/trunk/conv" top: "A/trunk/conv" }
layer { name: "A/mask/pool" type: "Pooling" bottom: "conv1" top: "A/mask/pool"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "A/mask/conv" type: "Convolution" bottom: "A/mask/pool" top: "A/mask/conv"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 bias_term: false } }
layer { name: "A/mask/conv/bn" type: "BN" bottom: "A/mask/conv" top: "A/mask/conv" bn_param { frozen: true } }
layer { name: "A/mask/conv/relu" type: "ReLU" bottom: "A/mask/conv" top: "A/mask/conv" }
layer { name: "A/mask/interp" type: "Interp" bottom: "A/mask/conv" bottom: "A/trunk/conv" top: "A/mask/interp" }
layer { name: "A/mask" type: "Sigmoid" bottom: "A/mask/interp" top: "A/mask" }
layer { name: "A/prod" type: "Eltwise" bottom: "A/mask" bottom: "A/trunk/conv" top: "A/prod"
        eltwise_param { operation: PROD } }
layer { name: "A/fusion" type: "Eltwise" bottom: "A/prod" bottom: "A/trunk/conv" top: "A/fusion"
        eltwise_param { operation: SUM } }
layer { name: "pool5" type: "Pooling" bottom: "A/fusion" top: "pool5"
        pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "pool5" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
'''

#: blob and layer names that must never become paths as they are
HOSTILE = r'''name: "hostile"
input: "data"
input_dim: 1
input_dim: 2
input_dim: 6
input_dim: 6
layer { name: "../../x" type: "Convolution" bottom: "data" top: "../../x"
        convolution_param { num_output: 3 kernel_size: 3 pad: 1 } }
layer { name: "/tmp/abs/y" type: "ReLU" bottom: "../../x" top: "/tmp/abs/y" }
layer { name: "a b\\c:d*e?" type: "Eltwise" bottom: "/tmp/abs/y" bottom: "../../x" top: "a b\\c:d*e?"
        eltwise_param { operation: PROD } }
'''


def write_net(tmp_path, text, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text", [MINI_ATTENTION, HOSTILE], ids=["mini_attention", "hostile_names"])
def test_clean_conversion_passes_every_blob(tmp_path, capsys, text):
    net = write_net(tmp_path, text)
    rc = main(["verify", str(net), "--reference", "numpy", "--all", "-q"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "PASS" in out and " 0 wrong, 0 drift past float32" in out


def test_outcome_rows_follow_net_order(tmp_path):
    from caffe2mx.verification import verify
    run = verify(write_net(tmp_path, MINI_ATTENTION))
    layers = [r.layer for r in run.outcome.rows]
    order = [None] + [n.name for n in run.graph.nodes]
    assert [order.index(x) for x in layers] == sorted(order.index(x) for x in layers)
    assert run.outcome.per_version and run.outcome.first is None
    assert all(np.isclose(r.diff.cosine, 1.0) for r in run.outcome.rows)
    assert all(r.diff.max_rel <= r.rtol and r.drift.max_rel <= (r.drift_bound or 0) for r in run.outcome.rows[1:])
