"""`--input-shape NAME=N,C,H,W`: parsing, errors, and every command that builds a net taking it.

The commands run in-process through `caffe2mx.cli.main`, as the console script does.
"""
import json

import pytest

from caffe2mx import cli
from caffe2mx.converter.errors import UsageError
from caffe2mx.converter.input_shapes import parse_input_shape, parse_input_shapes

from conftest import SHARED, need_shared

CORPUS = SHARED / "fixtures" / "corpus"


@pytest.mark.parametrize("text, expected", [
    ("data=1,3,224,224", ("data", (1, 3, 224, 224))),
    (" data = 1, 3, 8 ,8 ", ("data", (1, 3, 8, 8))),
    ("conv1/in=2,5", ("conv1/in", (2, 5))),
    ("x=7", ("x", (7,))),
])
def test_parse_good(text, expected):
    assert parse_input_shape(text) == expected


@pytest.mark.parametrize("text, message", [
    ("data", "takes NAME=N,C,H,W"),
    ("data=", "takes NAME=N,C,H,W"),
    ("=1,3,8,8", "takes NAME=N,C,H,W"),
    ("a=1=2", "takes NAME=N,C,H,W"),
    ("data=1,x,8,8", "whole numbers separated by commas, as in data=1,3,224,224"),
    ("data=1,3,,8", "whole numbers"),
    ("data=1,0,8,8", "every dimension must be at least 1"),
    ("data=1,-3,8,8", "every dimension must be at least 1"),
    ("1,3,8,8", "name the input, as NAME=N,C,H,W (e.g. data=1,3,8,8)"),
])
def test_parse_bad(text, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_input_shape(text)


def test_bare_shape_only_where_allowed():
    assert parse_input_shape("1,3,32,32", allow_bare=True) == (None, (1, 3, 32, 32))


def test_parse_several_and_a_name_twice():
    assert parse_input_shapes(["a=1,2", "b=3"]) == {"a": (1, 2), "b": (3,)}
    assert parse_input_shapes([]) == {}
    with pytest.raises(UsageError, match="gives 'a' twice"):
        parse_input_shapes(["a=1,2", "a=1,3"])


@pytest.mark.parametrize("command", ["convert", "inspect", "init-weights", "verify", "export-onnx", "visualize"])
def test_every_net_command_takes_repeated_input_shapes(command):
    extra = {"init-weights": ["-o", "x.caffemodel"], "export-onnx": ["-o", "x.onnx"]}.get(command, [])
    args = cli.build_parser().parse_args([command, "net.prototxt", *extra, "--input-shape", "a=1,2",
                                          "--input-shape", "b=3,4"])
    assert args.input_shape == ["a=1,2", "b=3,4"]


def test_private_option_module_is_not_a_command():
    names = [name for name, _ in cli._command_modules()]
    assert "convert" in names and not any(n.startswith("_") for n in names)


NET = '''name: "tiny"
input: "data"
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 2 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
'''


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.prototxt"
    path.write_text(NET)
    return path


def run(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def test_without_the_shape_the_error_asks_for_it(tiny, capsys):
    rc, _, err = run(capsys, "inspect", tiny)
    assert rc == 2 and f"{tiny}:3: layer 'conv'" in err and "--input-shape data=N,C,H,W" in err


def test_inspect_convert_init_weights(tiny, tmp_path, capsys):
    rc, out, _ = run(capsys, "inspect", tiny, "--input-shape", "data=2,3,7,9", "--json")
    assert rc == 0
    rows = {r["name"]: r for r in json.loads(out)["rows"]}
    assert rows["conv"]["output_shape"] == [2, 2, 5, 7]  # 3x3 valid convolution: 7-2, 9-2

    rc, _, err = run(capsys, "convert", tiny, "-o", tmp_path / "m", "--input-shape", "data=2,3,7,9")
    assert rc == 0, err
    name_map = json.loads((tmp_path / "m-namemap.json").read_text())
    assert name_map["input_shapes"] == {"data": [2, 3, 7, 9]}

    from caffe2mx.converter.caffemodel import read_caffemodel
    rc, _, err = run(capsys, "init-weights", tiny, "-o", tmp_path / "w.caffemodel", "--input-shape", "data=1,3,6,6")
    assert rc == 0, err
    assert read_caffemodel(tmp_path / "w.caffemodel")["conv"].blobs[0].shape == (2, 3, 3, 3)

    rc, _, err = run(capsys, "convert", tiny, "-o", tmp_path / "n", "--input-shape", "dat=2,3,7,9")
    assert rc == 2 and "'dat', which is not an input of the net (its inputs: 'data')" in err
    assert not (tmp_path / "n-symbol.json").exists()


def test_verify_and_export_onnx(tiny, tmp_path, capsys):
    rc, out, err = run(capsys, "verify", tiny, "--input-shape", "data=1,3,6,6")
    assert rc == 0, out + err
    onnx = pytest.importorskip("onnx")
    rc, _, err = run(capsys, "export-onnx", tiny, "-o", tmp_path / "t.onnx", "--input-shape", "data=1,3,6,6",
                     "--static-batch")
    assert rc == 0, err
    model = onnx.load(str(tmp_path / "t.onnx"))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 6, 6]
    rc, _, err = run(capsys, "export-onnx", "--symbol", tmp_path / "m", "-o", tmp_path / "u.onnx",
                     "--input-shape", "data=1,3,6,6")
    assert rc == 2 and "go with a prototxt" in err


def test_visualize(tiny, tmp_path, capsys):
    from caffe2mx.verify import graphs
    if not graphs.have_dot():
        pytest.skip("graphviz's dot is not installed")
    rc, out, err = run(capsys, "visualize", tiny, "-o", tmp_path / "g", "--no-mxnet", "--input-shape", "data=1,3,6,6")
    assert rc == 0, err
    assert "1x2x4x4" in (tmp_path / "g" / "caffe.dot").read_text()  # 3x3 valid convolution on 6x6


def test_openpose_at_368(capsys):
    path = need_shared(CORPUS / "openpose_coco.prototxt")
    rc, out, _ = run(capsys, "inspect", path, "--input-shape", "image=1,3,368,368", "--json")
    assert rc == 0
    rows = {r["name"]: r for r in json.loads(out)["rows"]}
    # stride 8 on 368: 46x46 maps; COCO: 38 PAF channels, 19 heat maps
    assert rows["Mconv7_stage6_L1"]["output_shape"] == [1, 38, 46, 46]
    assert rows["Mconv7_stage6_L2"]["output_shape"] == [1, 19, 46, 46]


def test_api_convert_takes_input_shapes(tiny):
    from caffe2mx import convert
    conv = convert(str(tiny), input_shapes={"data": (1, 3, 5, 5)})
    assert conv.name_map["input_shapes"] == {"data": [1, 3, 5, 5]}
    assert conv.net.shapes[conv.net.graph.final_version["conv"]] == (1, 2, 3, 3)
