"""The per-layer tolerance follows from float32 arithmetic: u = 2^-24 (half of float32's machine
epsilon) times the type's constant times sqrt(reduction length), the reduction length coming
from the layer's handler; end to end, a drift past its float32 bound fails even when every
layer passes on its own inputs. Checked against values computed here from the layers'
definitions (C_in/group*kh*kw, K, kernel area, class count), not from the code's output."""
import math

import numpy as np
import pytest

from caffe2mx.cli import main
from caffe2mx.converter.layers import handler_for
from caffe2mx.converter.pipeline import read_net
from caffe2mx.verify.metrics import (DEFAULT_ROUNDING, TYPE_ROUNDING, U32, compare, compare_many, drift_bound,
                                     escalated_tolerance, layer_tolerance)
from test_verify_nets import write_net

NET = r'''name: "reductions"
input: "data"
input_shape { dim: 1 dim: 6 dim: 9 dim: 9 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_h: 3 kernel_w: 2 group: 2 } }
layer { name: "ave" type: "Pooling" bottom: "conv" top: "ave" pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
layer { name: "max" type: "Pooling" bottom: "conv" top: "max" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "gap" type: "Pooling" bottom: "conv" top: "gap" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "ave" top: "fc" inner_product_param { num_output: 7 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
layer { name: "deconv" type: "Deconvolution" bottom: "conv" top: "deconv"
        convolution_param { num_output: 5 kernel_size: 4 stride: 2 } }
'''


def test_unit_roundoff_is_float32s():
    assert U32 == np.finfo(np.float32).eps / 2


def test_reduction_lengths_from_the_handlers(tmp_path):
    net = read_net(write_net(tmp_path, NET))
    shapes = net.shapes

    def k(name):
        node = next(n for n in net.graph.nodes if n.name == name)
        return handler_for(node.type).reduction_length(node, [shapes[b] for b in node.bottoms],
                                                        [shapes[t] for t in node.tops])
    assert k("conv") == (6 // 2) * 3 * 2
    assert k("ave") == 9 and k("max") == 1
    assert k("gap") == 7 * 8  # the conv's output map
    assert k("fc") == 4 * 4 * 3  # C*H*W of the pooled map
    assert k("prob") == 7
    # a transposed convolution: every input value meets kh*kw outputs per output channel, so an output
    # sums C_in*kh*kw*H_in*W_in / (H_out*W_out) values on average (4 x 4x4 over a 7x8 -> 16x18 map)
    assert k("deconv") == int(4 * 16 * 7 * 8 / (16 * 18))


def test_layer_tolerance_formula_and_overrides():
    for layer_type, c in (("Convolution", DEFAULT_ROUNDING), ("BN", TYPE_ROUNDING["BN"]), ("ReLU", 4)):
        assert layer_tolerance(layer_type, 2304) == pytest.approx(2 ** -24 * c * 48)
    assert layer_tolerance("Convolution", 2304, rtol=1e-3) == 1e-3
    assert layer_tolerance("Convolution", 2304, {"Convolution": 5e-4}, rtol=1e-3) == 5e-4
    assert escalated_tolerance(1e-6, 1e-6) == 8e-6 and escalated_tolerance(1e-5, 1e-7) == 1e-5
    assert drift_bound(1e-5, 0.0) == 8e-5 and drift_bound(1e-9, 1e-6, engines=2) == 16e-6


def test_compare_reads_in_chunks_as_the_one_definition():
    rng = np.random.default_rng(0)
    b = rng.standard_normal(300_001)
    a = (b + rng.standard_normal(b.size) * 1e-6).astype(np.float32)
    rms = math.sqrt(np.mean(b * b))
    want = float(np.max(np.abs(a.astype(np.float64) - b) / np.maximum(np.abs(b), rms)))
    d = compare(a, b)
    assert d.max_rel == pytest.approx(want, rel=1e-12) and d.rms == pytest.approx(rms)
    own, free = compare_many(b, [a, b], cosine=[True, False])
    assert own == d and free.max_rel == 0.0 and math.isnan(free.cosine)
    bad = a.copy()
    bad[7] = np.nan
    assert not compare(bad, b).nonfinite_ok


def test_drift_past_float32_fails_end_to_end_though_each_layer_passes(tmp_path, capsys):
    """A 1% error in a convolution, let through with --type-rtol (which also sets that layer's drift
    threshold), is still far past what float32 forces at the next blob: FAIL, as drift."""
    import caffe2mx
    from test_verify_faults import MINI_ATTENTION, Model, conv_weights_1pct
    net = write_net(tmp_path, MINI_ATTENTION)
    m = Model(caffe2mx.convert(net))
    layer = conv_weights_1pct(m, first=True)
    m.save(tmp_path / "model")
    assert main(["verify", str(net), "--model", str(tmp_path / "model"), "--type-rtol", "Convolution=1", "-q"]) == 1
    out = capsys.readouterr().out
    assert f"end to end: '{layer}' [{layer}@1] after layer '{layer}/bn' (BN)" in out, out
    assert "more than float32 forces here" in out and "DRIFT" in out and "0 wrong" in out, out
