"""The fork BN ambiguity, surfaced: convert states which reading of the 4th blob it used (one
line, and per layer in the name map) and warns, by layer name, where the caffemodel's values
cannot be what that reading takes them for.

The bounds are those of the two definitions: an inverse std 1/sqrt(var + eps) lies in
(0, 1/sqrt(eps)] (316.2 for eps 1e-5); a variance is >= 0.
"""
import json

import numpy as np
import pytest

from caffe2mx.cli import main
from caffe2mx.converter.layers.norm import blob3_problems, blob3_warning

from conftest import write_test_caffemodel

NET = """name: "bn_net"
input: "data"
input_shape { dim: 1 dim: 3 dim: 5 dim: 5 }
layer { name: "bn1" type: "BN" bottom: "data" top: "bn1" bn_param { frozen: true } }
layer { name: "relu" type: "ReLU" bottom: "bn1" top: "bn1" }
layer { name: "bn2" type: "BN" bottom: "bn1" top: "bn2" bn_param { frozen: true eps: 1e-5 } }
"""


def _blobs(blob3):
    c = len(blob3)
    shape = (1, c, 1, 1)
    return [np.full(shape, 1.0, np.float32), np.zeros(shape, np.float32), np.zeros(shape, np.float32),
            np.asarray(blob3, np.float32).reshape(shape)]


def _convert(tmp_path, capsys, bn1, bn2, *options):
    net = tmp_path / "bn_net.prototxt"
    net.write_text(NET)
    w = write_test_caffemodel(tmp_path / "w.caffemodel", {"bn1": _blobs(bn1), "bn2": _blobs(bn2)},
                              types={"bn1": "BN", "bn2": "BN"})
    rc = main(["convert", str(net), str(w), "-o", str(tmp_path / "out"), "--force", *options])
    err = capsys.readouterr().err
    assert rc == 0, err
    return err, json.loads((tmp_path / "out-namemap.json").read_text())


def test_convert_states_the_reading_in_one_line_and_records_it_per_layer(tmp_path, capsys):
    err, nm = _convert(tmp_path, capsys, [0.5, 1.0, 2.0], [0.2, 3.0, 9.0])
    lines = [ln for ln in err.splitlines() if "BN layer" in ln]
    assert lines == ["note: 2 BN layer(s): the 4th blob was read as an inverse std, as the Residual Attention "
                     "Network fork stores it; for a net from the TSN and PSPNet forks, which store a variance, "
                     "convert with --bn-blob3 variance"]
    assert nm["layers"]["bn1"]["bn_blob3"] == nm["layers"]["bn2"]["bn_blob3"] == "inv_std"
    assert nm["options"]["bn_blob3"] == "inv_std"
    assert "bn_blob3" not in nm["layers"]["relu"]
    assert nm["warnings"] == [] and "warning:" not in err


def test_the_other_reading_is_stated_the_other_way(tmp_path, capsys):
    err, nm = _convert(tmp_path, capsys, [0.5, 1.0, 2.0], [0.2, 3.0, 9.0], "--bn-blob3", "variance")
    assert ("note: 2 BN layer(s): the 4th blob was read as a variance, as the TSN and PSPNet forks store it; for a "
            "net from the Residual Attention Network fork, which stores an inverse std, convert with --bn-blob3 "
            "inv_std") in err.splitlines()
    assert nm["layers"]["bn1"]["bn_blob3"] == "variance"


def test_no_statement_for_a_net_without_bn(tmp_path, capsys):
    net = tmp_path / "n.prototxt"
    net.write_text('input: "x" input_shape { dim: 1 dim: 2 dim: 3 dim: 3 }\n'
                   'layer { name: "r" type: "ReLU" bottom: "x" top: "y" }\n')
    assert main(["convert", str(net), "-o", str(tmp_path / "o")]) == 0
    assert "BN layer" not in capsys.readouterr().err


def test_variances_read_as_inverse_stds_are_named_by_layer(tmp_path, capsys):
    # bn2 holds variances of a first layer on 0-255 images: 400 and 2500 exceed 1/sqrt(1e-5) = 316.2
    err, nm = _convert(tmp_path, capsys, [0.5, 1.0, 2.0], [400.0, 2500.0, 30.0])
    warned = [w["layer"] for w in nm["warnings"]]
    assert warned == ["bn2"]
    line = next(ln for ln in err.splitlines() if ln.startswith("warning:"))
    assert line.startswith("warning: layer 'bn2' (BN): 4th blob implausible as an inverse std")
    assert "2 of 3 value(s) exceed 1/sqrt(eps) = 316.2" in line and "try --bn-blob3 variance" in line
    err, nm = _convert(tmp_path, capsys, [0.5, 1.0, 2.0], [400.0, 2500.0, 30.0], "--bn-blob3", "variance")
    assert nm["warnings"] == []


def test_negative_and_zero_values(tmp_path, capsys):
    _, nm = _convert(tmp_path, capsys, [0.0, 1.0, 2.0], [-1.0, 1.0, 2.0], "--bn-blob3", "variance")
    assert [w["layer"] for w in nm["warnings"]] == ["bn2"]
    assert "1 of 3 value(s) are negative" in nm["warnings"][0]["message"]
    assert "try --bn-blob3" not in nm["warnings"][0]["message"], "negative fits no reading"
    _, nm = _convert(tmp_path, capsys, [0.0, 1.0, 2.0], [1.0, 1.0, 2.0])
    assert [w["layer"] for w in nm["warnings"]] == ["bn1"]
    assert "are <= 0" in nm["warnings"][0]["message"] and "try --bn-blob3 variance" in nm["warnings"][0]["message"]


@pytest.mark.parametrize("values, mode, expect", [
    ([0.1, 10.0, 316.0], "inv_std", []),               # within (0, 316.23]
    ([316.3], "inv_std", ["exceed"]),
    ([np.nan, 1.0], "inv_std", ["not finite"]),
    ([0.0, 0.5], "variance", []),                        # a dead channel may have variance 0
    ([0.0, 0.0], "variance", ["every value is 0"]),
    ([1e6], "variance", []),
])
def test_bounds(values, mode, expect):
    problems = blob3_problems(np.asarray(values), 1e-5, mode)
    assert len(problems) == len(expect) and all(e in p for e, p in zip(expect, problems))


def test_plausible_under_both_readings_gives_no_warning():
    rng = np.random.default_rng(0)
    values = rng.uniform(0.1, 10, 64)
    assert blob3_warning(values, 1e-5, "inv_std") is None and blob3_warning(values, 1e-5, "variance") is None


def test_seeded_weights_are_plausible_even_for_a_constant_channel(tmp_path, capsys):
    """Seeded calibration draws inverse stds from the activations; a channel with no variance
    (here: Power with scale 0) must still get one at most 1/sqrt(eps)."""
    net = tmp_path / "c.prototxt"
    net.write_text('input: "x" input_shape { dim: 1 dim: 4 dim: 6 dim: 6 }\n'
                   'layer { name: "p" type: "Power" bottom: "x" top: "p" power_param { scale: 0 shift: 1 } }\n'
                   'layer { name: "bn" type: "BN" bottom: "p" top: "bn" bn_param { frozen: true } }\n')
    for seed in range(3):
        assert main(["convert", str(net), "-o", str(tmp_path / "o"), "--seed", str(seed), "--force"]) == 0
        err = capsys.readouterr().err
        assert "warning:" not in err, err
