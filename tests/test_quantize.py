"""`caffe2mx quantize`: an int8 model by MXNet's own quantization, calibrated on the user's
inputs, written only when its top-1 agreement with the float model is high enough.

The int8 outputs are checked against the float model's (computed independently by the
float executor), not against numbers typed in from the int8 run.
"""
import json

import numpy as np
import pytest

from caffe2mx.cli import main
from caffe2mx.commands.quantize import read_inputs
from caffe2mx.converter.optimize_int8 import agreement

from conftest import GOLDEN, need_shared


@pytest.fixture(scope="module")
def optimised(tmp_path_factory):
    """The golden attention block (conv, BN, ReLU, pooling, Interp, Sigmoid, Eltwise) converted
    with --optimize from its real-Caffe caffemodel."""
    folder = need_shared(GOLDEN / "net_attention_block")
    out = tmp_path_factory.mktemp("quantize")
    assert main(["convert", str(folder / "net.prototxt"), str(folder / "weights.caffemodel"), "-o",
                 str(out / "net"), "--optimize", "-q"]) == 0
    return out / "net-opt"


def _files(prefix):
    return [f"{prefix}-{s}" for s in ("symbol.json", "0000.params", "namemap.json")]


@pytest.mark.parametrize("granularity", ["channel-wise", "tensor-wise"])
def test_quantize_writes_an_int8_model_that_computes_what_the_float_one_does(optimised, tmp_path, capsys,
                                                                            granularity):
    """Both weight granularities (tensor-wise once failed on the Interp's resize matrices: MXNet
    finds the parameters to quantize by the suffix `weight`; they now stay float)."""
    import caffe2mx
    from caffe2mx.converter.optimize_int8 import predict
    out = tmp_path / "q"
    assert main(["quantize", str(optimised), "--calib", "random:16", "--min-agreement", "0", "-o", str(out),
                 "--granularity", granularity]) == 0
    assert "top-1 agreement" in capsys.readouterr().err
    assert all((tmp_path / f).is_file() for f in ("q-symbol.json", "q-0000.params", "q-namemap.json"))
    qconv, fconv = caffe2mx.load(out), caffe2mx.load(optimised)
    record = qconv.name_map["quantized"]
    assert record["calib_mode"] == "naive" and record["calibration_inputs"] == 16
    assert record["granularity"] == granularity
    assert record["agreement"]["inputs"] == 16
    ops = {n["op"] for n in json.loads(qconv.symbol.tojson())["nodes"]}
    assert "_contrib_quantize_v2" in ops, ops  # it really runs int8
    x = np.random.default_rng(5).uniform(-1, 1, (6, 4, 14, 12)).astype(np.float32)
    want, got = predict(fconv, x, 4), predict(qconv, x, 4)
    rel_rms = np.sqrt(np.mean((got - want) ** 2) / np.mean(want ** 2))
    assert rel_rms < 0.05, f"int8 output off the float output by {rel_rms:.3f} (relative RMS)"
    assert not np.array_equal(got, want)


def test_quantize_refuses_a_model_below_min_agreement(optimised, tmp_path, capsys):
    out = tmp_path / "q"
    assert main(["quantize", str(optimised), "--calib", "random:32", "--min-agreement", "1", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "below --min-agreement 100%" in err and "nothing written" in err
    assert not any((tmp_path / f).exists() for f in ("q-symbol.json", "q-0000.params", "q-namemap.json"))


@pytest.mark.parametrize("calib,message", [
    ("random:0", "positive count"),
    ("nowhere/", "not a directory of images"),
    ("bad.npy", "the net takes N x [4, 14, 12]"),
])
def test_quantize_bad_calibration_inputs_are_located_errors(optimised, tmp_path, capsys, calib, message):
    np.save(tmp_path / "bad.npy", np.zeros((3, 3, 14, 12), np.float32))
    if calib == "bad.npy":
        calib = str(tmp_path / calib)
    assert main(["quantize", str(optimised), "--calib", calib, "-o", str(tmp_path / "q")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "q-symbol.json").exists()


def test_quantize_refuses_an_int8_model_and_a_missing_prefix(optimised, tmp_path, capsys):
    assert main(["quantize", str(optimised), "--calib", "random:8", "--min-agreement", "0", "-o",
                 str(tmp_path / "q")]) == 0
    assert main(["quantize", str(tmp_path / "q"), "--calib", "random:8"]) == 2
    assert "already an int8 model" in capsys.readouterr().err
    assert main(["quantize", str(tmp_path / "absent"), "--calib", "random:8"]) == 2


def test_calibration_inputs_from_images_and_npy(tmp_path):
    """A directory of images goes through the preprocessing preset (BGR, minus the mean)."""
    folder = tmp_path / "images"
    folder.mkdir()
    rgb = np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3)
    for name in ("a.ppm", "b.ppm"):
        (folder / name).write_bytes(b"P6\n4 5\n255\n" + rgb.tobytes())
    (folder / "notes.txt").write_text("not an image")
    from caffe2mx.verify.inputs import preprocess
    x = read_inputs(folder, (1, 3, 5, 4), prep=preprocess("imagenet"))
    assert x.shape == (2, 3, 5, 4)
    want = rgb[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) - np.array([104, 117, 123], np.float32)[:, None, None]
    assert np.array_equal(x[0], want) and np.array_equal(x[1], want)
    np.save(tmp_path / "one.npy", want)
    assert read_inputs(tmp_path / "one.npy", (1, 3, 5, 4)).shape == (1, 3, 5, 4)
    r1, r2 = read_inputs("random:3", (1, 3, 5, 4), seed=4), read_inputs("random:3", (1, 3, 5, 4), seed=4)
    assert r1.shape == (3, 3, 5, 4) and np.array_equal(r1, r2) and r1.min() >= -1 and r1.max() <= 1


def test_agreement_counts_top1_and_the_largest_difference():
    ref = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.9, 0.05, 0.05]])
    got = np.array([[0.1, 0.6, 0.3], [0.3, 0.5, 0.2], [0.2, 0.2, 0.6], [0.9, 0.05, 0.05]])
    a = agreement(ref, got)
    assert a == {"inputs": 4, "top1_agreement": 0.75, "max_prob_diff": pytest.approx(0.2)}


def test_entropy_calibration_runs(optimised, tmp_path):
    pytest.importorskip("scipy")
    import caffe2mx
    assert main(["quantize", str(optimised), "--calib", "random:8", "--calib-mode", "entropy", "--min-agreement", "0",
                 "-o", str(tmp_path / "q")]) == 0
    assert caffe2mx.load(tmp_path / "q").name_map["quantized"]["calib_mode"] == "entropy"


def test_quantize_replaces_its_output_only_with_force_and_never_its_input(optimised, tmp_path, capsys):
    """The error for an existing output says "pass --force": quantize must take it (it once did not),
    and even with it must not write over the float model it reads."""
    out = tmp_path / "q"
    args = ["quantize", str(optimised), "--calib", "random:8", "--min-agreement", "0", "-o", str(out)]
    assert main(args) == 0
    before = (tmp_path / "q-0000.params").stat().st_mtime_ns
    assert main(args) == 2
    assert "pass --force" in capsys.readouterr().err
    assert (tmp_path / "q-0000.params").stat().st_mtime_ns == before
    assert main(args + ["--force"]) == 0
    float_params = optimised.parent / f"{optimised.name}-0000.params"
    kept = float_params.read_bytes()
    assert main(["quantize", str(optimised), "--calib", "random:8", "--min-agreement", "0", "-o", str(optimised),
                 "--force"]) == 2
    assert "is an input of this run" in capsys.readouterr().err
    assert float_params.read_bytes() == kept
