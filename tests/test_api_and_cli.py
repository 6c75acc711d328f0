"""The CLI and the Python API agree with themselves: one loader for converted files, names
that cannot clash, the same options meaning the same thing in every command, exit codes."""
import json
import os

import mxnet as mx
import numpy as np
import pytest

import caffe2mx
from caffe2mx.cli import main
from caffe2mx.converter.errors import ModelError, UsageError
from caffe2mx.verify.mxnet_run import run_blobs
from caffe2mx.verify.numpy_ref import forward

from conftest import assert_ownership, write_test_caffemodel

NET = """name: "small"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "c" type: "Convolution" bottom: "data" top: "c"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "bn" type: "BN" bottom: "c" top: "c" bn_param { frozen: true } }
layer { name: "r" type: "ReLU" bottom: "c" top: "c" }
layer { name: "fc" type: "InnerProduct" bottom: "c" top: "fc" inner_product_param { num_output: 5 } }
"""


@pytest.fixture
def net(tmp_path):
    p = tmp_path / "small.prototxt"
    p.write_text(NET)
    return p


@pytest.fixture
def weights(tmp_path, net):
    rng = np.random.default_rng(1)
    blobs = {"c": [rng.standard_normal((4, 3, 3, 3)).astype("f4"), rng.standard_normal(4).astype("f4")],
             "bn": [rng.uniform(0.5, 1.5, (1, 4, 1, 1)).astype("f4") for _ in range(4)],
             "fc": [rng.standard_normal((5, 256)).astype("f4"), np.zeros(5, "f4")]}
    return write_test_caffemodel(tmp_path / "small.caffemodel", blobs, text=NET)


def test_names_cannot_clash_with_an_input_named_like_a_parameter(tmp_path):
    """An input blob `c_weight` beside a convolution `c`: two distinct MXNet arguments."""
    p = tmp_path / "clash.prototxt"
    p.write_text('input: "c_weight" input_shape { dim: 1 dim: 2 dim: 5 dim: 5 }\n'
                 'layer { name: "c" type: "Convolution" bottom: "c_weight" top: "c" '
                 'convolution_param { num_output: 3 kernel_size: 3 } }\n')
    conv = caffe2mx.convert(p)
    args = conv.symbol.list_arguments()
    assert len(args) == len(set(args)) == 3
    assert conv.name_map["inputs"] == {"c_weight": "c_weight"}
    assert set(conv.arg_params) == set(args) - {"c_weight"}
    assert_ownership(conv)
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype("f4")
    got = run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, {"c_weight": x})["c"]
    ref = forward(conv.net.graph, {"c_weight": x}).blobs["c"]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_load_round_trip_and_to_gluon(tmp_path, net, weights):
    conv = caffe2mx.convert(net, weights, output_prefix=tmp_path / "m")
    loaded = caffe2mx.load(tmp_path / "m")
    assert loaded.name_map == json.loads(json.dumps(conv.name_map))
    assert set(loaded.arg_params) == set(conv.arg_params) and set(loaded.aux_params) == set(conv.aux_params)
    block = loaded.to_gluon()
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype("f4")
    want = forward(conv.net.graph, {"data": x}).blobs["fc"]
    np.testing.assert_allclose(block(mx.nd.array(x)).asnumpy(), want, rtol=1e-4, atol=1e-4)


def test_load_parameterless_net(tmp_path):
    p = tmp_path / "relu.prototxt"
    p.write_text('input: "x" input_shape { dim: 1 dim: 2 }\nlayer { name: "r" type: "ReLU" bottom: "x" top: "y" }\n')
    caffe2mx.convert(p, output_prefix=tmp_path / "r")
    loaded = caffe2mx.load(tmp_path / "r")
    assert loaded.arg_params == {} and loaded.symbol.list_arguments() == ["x"]


@pytest.mark.parametrize("damage", ["symbol.json", "0000.params", "namemap.json"])
def test_load_corrupt_file_is_a_located_error(tmp_path, net, damage):
    caffe2mx.convert(net, output_prefix=tmp_path / "m")
    path = tmp_path / f"m-{damage}"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError) as err:
        caffe2mx.load(tmp_path / "m")
    assert str(path) in str(err.value)


def test_load_missing_files_names_them(tmp_path):
    with pytest.raises(UsageError, match="missing"):
        caffe2mx.load(tmp_path / "nothing")


def test_verify_model_takes_caffemodel_and_bn_reading_from_its_name_map(tmp_path, net, weights, capsys):
    caffe2mx.convert(net, weights, output_prefix=tmp_path / "m", bn_blob3="variance")
    run = caffe2mx.verify(model=str(tmp_path / "m"))
    assert run.outcome.passed and run.caffemodel == str(weights) and not run.warnings
    assert caffe2mx.verify(net, model=str(tmp_path / "m"), bn_blob3="inv_std").warnings  # told, not silent
    # a user's different choice is honoured with a warning
    rc = main(["verify", str(net), "--model", str(tmp_path / "m"), "--bn-blob3", "inv_std", "-q"])
    assert rc == 1 and "converted with --bn-blob3 variance" in capsys.readouterr().err


def test_verify_model_whose_caffemodel_is_gone_is_a_clear_error(tmp_path, net, weights, capsys):
    caffe2mx.convert(net, weights, output_prefix=tmp_path / "m")
    os.remove(weights)
    assert main(["verify", str(net), "--model", str(tmp_path / "m"), "-q"]) == 2
    assert "no longer there" in capsys.readouterr().err


def test_seeded_model_verifies_with_its_own_seed(tmp_path, net):
    caffe2mx.convert(net, seed=7, output_prefix=tmp_path / "m")
    assert caffe2mx.verify(net, model=str(tmp_path / "m")).outcome.passed


@pytest.mark.parametrize("how", ["positional", "option"])
def test_every_weights_command_takes_the_caffemodel_both_ways(tmp_path, net, weights, how, capsys):
    w = [str(weights)] if how == "positional" else ["--caffemodel", str(weights)]
    assert main(["convert", str(net), *w, "-o", str(tmp_path / "m"), "-q"]) == 0
    assert main(["verify", str(net), *w, "-q"]) == 0
    assert main(["inspect", str(net), *w]) == 0
    assert main(["export-onnx", str(net), *w, "-o", str(tmp_path / "n.onnx"), "-q"]) == 0
    capsys.readouterr()


def test_export_onnx_model_and_symbol_alias(tmp_path, net):
    caffe2mx.convert(net, output_prefix=tmp_path / "m")
    assert main(["export-onnx", "--model", str(tmp_path / "m"), "-o", str(tmp_path / "a.onnx"), "-q"]) == 0
    assert main(["export-onnx", "--symbol", str(tmp_path / "m"), "-o", str(tmp_path / "b.onnx"), "-q"]) == 0
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_output_may_be_a_directory_and_parents_are_created(tmp_path, net, capsys):
    out = tmp_path / "new" / "deeper"
    assert main(["convert", str(net), "-o", f"{out}/", "-q"]) == 0
    assert (out / "small-symbol.json").is_file()
    assert main(["convert", str(net), "-o", str(out), "-q", "--force"]) == 0  # an existing directory (same files)
    assert main(["export-onnx", str(net), "-o", f"{tmp_path / 'onnx'}/", "-q"]) == 0
    assert (tmp_path / "onnx" / "small.onnx").is_file()
    assert main(["export-onnx", str(net), "-o", str(tmp_path / "onnx"), "-q", "--force"]) == 0
    assert main(["init-weights", str(net), "-o", str(tmp_path / "w") + "/", "-q"]) == 0
    assert (tmp_path / "w" / "small.caffemodel").is_file()


def test_seed_means_the_weights_everywhere(tmp_path, net):
    a = caffe2mx.convert(net, seed=1)
    b = caffe2mx.convert(net, seed=2)
    assert not np.array_equal(a.arg_params["c_weight"].asnumpy(), b.arg_params["c_weight"].asnumpy())
    assert main(["convert", str(net), "--seed", "1", "-o", str(tmp_path / "s1"), "-q"]) == 0
    np.testing.assert_array_equal(caffe2mx.load(tmp_path / "s1").arg_params["c_weight"].asnumpy(),
                                  a.arg_params["c_weight"].asnumpy())
    r1 = caffe2mx.verify(net, seed=1, input_seed=5)
    r2 = caffe2mx.verify(net, seed=1, input_seed=6)
    assert not np.array_equal(r1.inputs["data"], r2.inputs["data"])


def test_internal_error_is_exit_3_with_one_line(monkeypatch, net, capsys):
    import caffe2mx.commands.inspect as cmd
    monkeypatch.setattr(cmd, "inspect_net", lambda *a, **k: 1 / 0)
    assert main(["inspect", str(net)]) == 3
    err = capsys.readouterr().err
    assert "internal error (ZeroDivisionError" in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert main(["inspect", str(net), "--debug"]) == 3
    assert "Traceback" in capsys.readouterr().err


def test_api_functions_at_top_level(net):
    for name in ("convert", "load", "verify", "export_onnx", "inspect"):
        assert callable(getattr(caffe2mx, name)), name
    import importlib
    assert importlib.import_module("caffe2mx.verify.metrics") is caffe2mx.verify.metrics  # still a package
    assert callable(caffe2mx.verify)
    rows = caffe2mx.inspect(net)
    assert [r["type"] for r in rows] == ["Convolution", "BN", "ReLU", "InnerProduct"]
    model = caffe2mx.export_onnx(net)
    assert {n.name for n in model.graph.node} >= {"c", "fc"}


def test_convert_of_a_loaded_net_keeps_the_output_rules(tmp_path, net, weights):
    """A LoadedNet (weights already bound) is written like any conversion: an existing prefix
    is refused (nothing touched) unless force, and the files load."""
    from caffe2mx.converter.pipeline import load_net
    loaded = load_net(str(net), str(weights))
    caffe2mx.convert(loaded, output_prefix=tmp_path / "m")
    before = (tmp_path / "m-0000.params").read_bytes()
    with pytest.raises(UsageError, match="already exist"):
        caffe2mx.convert(loaded, output_prefix=tmp_path / "m")
    assert (tmp_path / "m-0000.params").read_bytes() == before
    caffe2mx.convert(loaded, output_prefix=tmp_path / "m", force=True)
    assert caffe2mx.load(tmp_path / "m").name_map["caffemodel"] == str(weights)
