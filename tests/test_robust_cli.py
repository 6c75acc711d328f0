"""Hand-made bad inputs through the CLI, one test per family of the robustness issue (11).

Every case must exit 2 with caffe2mx's own located message (no traceback, a bounded number
of lines) and leave every file under the test directory exactly as it was (content hashes,
not sizes). The helpers here are shared by the other test_robust_* files.
"""
import hashlib
import os
from pathlib import Path

import pytest

from caffe2mx.cli import main
from caffe2mx.converter.errors import MAX_ECHO, MAX_LISTED


def tree_state(root):
    """{path: content hash, or 'dir'} for everything under root."""
    out = {}
    for p in sorted(Path(root).rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() and not p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run(capsys, args):
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def assert_refused(capsys, root, args, must=(), max_lines=12, code=2):
    """Run the CLI; assert exit `code`, a short traceback-free error holding every piece of
    `must`, and no file under root created, changed or removed."""
    before = tree_state(root)
    rc, out, err = run(capsys, args)
    assert rc == code, f"exit {rc}\nstdout:\n{out}\nstderr:\n{err}"
    assert "Traceback" not in err + out, err
    assert len(err.strip().splitlines()) <= max_lines, err
    for piece in must:
        assert str(piece) in err, f"{piece!r} not in:\n{err}"
    assert tree_state(root) == before, "files changed under the test directory"
    return err


def net_text(dims, body):
    shape = " ".join(f"dim: {d}" for d in dims)
    return f'name: "n"\ninput: "data"\ninput_shape {{ {shape} }}\n{body}\n'


def write(root, name, text):
    p = Path(root) / name
    p.write_text(text)
    return p


def conv_layer(params, type_="Convolution"):
    return f'layer {{ name: "c" type: "{type_}" bottom: "data" top: "c" convolution_param {{ {params} }} }}'


#: (input dims, layers, pieces the error must hold): Caffe's LayerSetUp would refuse each
PARAMETER_CASES = {
    "conv-stride-0": ((1, 3, 8, 8), conv_layer("num_output: 4 kernel_size: 3 stride: 0"), ["stride is 0"]),
    "conv-stride_h-0": ((1, 3, 8, 8), conv_layer("num_output: 4 kernel_size: 3 stride_h: 0 stride_w: 1"),
                        ["stride_h is 0"]),
    "conv-stride_h-alone": ((1, 3, 8, 8), conv_layer("num_output: 4 kernel_size: 3 stride_h: 2"),
                            ["stride_h is given without stride_w"]),
    "conv-dilation-0": ((1, 3, 8, 8), conv_layer("num_output: 4 kernel_size: 3 dilation: 0"), ["dilation is 0"]),
    "conv-num_output-0": ((1, 3, 8, 8), conv_layer("num_output: 0 kernel_size: 3"), ["num_output is 0"]),
    "conv-group-0": ((1, 3, 8, 8), conv_layer("num_output: 4 kernel_size: 3 group: 0"), ["group is 0"]),
    "conv-kernel-and-kernel_h": ((1, 3, 8, 8), conv_layer("num_output: 4 kernel_size: 3 kernel_h: 3 kernel_w: 3"),
                                 ["kernel_size or kernel_h/kernel_w"]),
    "deconv-stride-0": ((1, 3, 8, 8), conv_layer("num_output: 4 kernel_size: 2 stride: 0", "Deconvolution"),
                        ["stride is 0"]),
    "depthwise-stride-0": ((1, 3, 8, 8), conv_layer("kernel_size: 3 stride: 0", "ConvolutionDepthwise"),
                           ["stride is 0"]),
    "depthwise-dilation-0": ((1, 3, 8, 8), conv_layer("kernel_size: 3 dilation: 0", "DepthwiseConvolution"),
                             ["dilation is 0"]),
    "im2col-stride_w-0": ((1, 3, 8, 8), conv_layer("kernel_size: 3 stride_h: 1 stride_w: 0", "Im2col"),
                          ["stride_w is 0"]),
    "pool-stride-0": ((1, 3, 8, 8), 'layer { name: "c" type: "Pooling" bottom: "data" top: "c" '
                                    'pooling_param { kernel_size: 2 stride: 0 } }', ["stride is 0"]),
    "pool-kernel_h-0": ((1, 3, 8, 8), 'layer { name: "c" type: "Pooling" bottom: "data" top: "c" '
                                      'pooling_param { kernel_h: 0 kernel_w: 2 } }', ["kernel_h is 0"]),
    "global-pool-stride": ((1, 3, 8, 8), 'layer { name: "c" type: "Pooling" bottom: "data" top: "c" '
                                         'pooling_param { global_pooling: true stride: 2 } }', ["stride other than 1"]),
    "ip-num_output-0": ((1, 3, 8, 8), 'layer { name: "c" type: "InnerProduct" bottom: "data" top: "c" '
                                      'inner_product_param { num_output: 0 } }', ["num_output is 0"]),
    "reshape-dim-minus-2": ((1, 3, 8, 8), 'layer { name: "c" type: "Reshape" bottom: "data" top: "c" '
                                          'reshape_param { shape { dim: -2 dim: 96 } } }', ["dim -2"]),
    "reshape-two-minus-1": ((1, 3, 8, 8), 'layer { name: "c" type: "Reshape" bottom: "data" top: "c" '
                                          'reshape_param { shape { dim: -1 dim: -1 } } }', ["one -1"]),
    "scale-axis-9": ((1, 3, 8, 8), 'layer { name: "c" type: "Scale" bottom: "data" top: "c" scale_param { axis: 9 } }',
                     ["axis 9 is out of range"]),
    "scale-num_axes-minus-5": ((1, 3, 8, 8), 'layer { name: "c" type: "Scale" bottom: "data" top: "c" '
                                             'scale_param { num_axes: -5 } }', ["num_axes -5"]),
    "bias-axis-minus-9": ((1, 3, 8, 8), 'layer { name: "c" type: "Bias" bottom: "data" top: "c" '
                                        'bias_param { axis: -9 } }', ["axis -9 is out of range"]),
    "input-dim-0": ((1, 0, 8, 8), 'layer { name: "c" type: "ReLU" bottom: "data" top: "c" }', ["dimension 0"]),
    "input-dim-negative": ((1, -3, 8, 8), 'layer { name: "c" type: "ReLU" bottom: "data" top: "c" }',
                           ["dimension -3"]),
    "input-beyond-int32": ((65536, 65536, 1, 1), 'layer { name: "c" type: "ReLU" bottom: "data" top: "c" }',
                           ["more than 2147483647 values"]),
    "input-0-D": ((), 'layer { name: "c" type: "ReLU" bottom: "data" top: "c" }', ["0-D"]),
    "interp-5-D": ((1, 3, 8, 8, 2), 'layer { name: "c" type: "Interp" bottom: "data" top: "c" '
                                    'interp_param { zoom_factor: 2 } }', ["expects a 4-D input"]),
    "prelu-1-D": ((3,), 'layer { name: "c" type: "PReLU" bottom: "data" top: "c" }', ["at least 2 axes"]),
    "conv-1-D": ((3,), conv_layer("num_output: 4 kernel_size: 1"), ["expects a 4-D input"]),
    "bn-1-D": ((3,), 'layer { name: "c" type: "BN" bottom: "data" top: "c" }', ["at least 2 axes"]),
    "lrn-2-D": ((2, 3), 'layer { name: "c" type: "LRN" bottom: "data" top: "c" }', ["expects a 4-D input"]),
    "crop-ranks-differ": ((1, 3, 8, 8), 'layer { name: "r" type: "Reshape" bottom: "data" top: "r" '
                                        'reshape_param { shape { dim: 3 dim: 64 } } }\n'
                                        'layer { name: "c" type: "Crop" bottom: "data" bottom: "r" top: "c" }',
                          ["differ in rank"]),
    "deconv-output-beyond-int32": ((1, 3, 8, 8), conv_layer("num_output: 4 kernel_size: 2 stride: 100000",
                                                            "Deconvolution"), ["more than 2147483647 values"]),
    # found by benchmarks/fuzz.py: a uint32 class count was listed class by class (a memory bomb)
    "detection-classes-uint32": ((1, 3, 8, 8), 'layer { name: "c" type: "DetectionOutput" bottom: "data" top: "c" '
                                               'detection_output_param { num_classes: 4294967295 } }',
                                 ["takes 3 bottom(s)"]),
}


#: identity layers in a row on a net input (MXNet 1.9.1 cannot bind a copy of a copy of a
#: variable): each pair converts, binds and verifies (found by benchmarks/fuzz.py for Upsample)
IDENTITY_PAIRS = {
    "upsample-scale-1": 'type: "Upsample"',
    "dropout": 'type: "Dropout"',
    "concat-one-bottom": 'type: "Concat"',
    "tile-1": 'type: "Tile" tile_param { tiles: 1 }',
    "argmax-axis-top1": 'type: "ArgMax" argmax_param { axis: 1 }',
    "normalize-subnormal-eps": 'type: "Normalize" norm_param { eps: 1.4e-45 }',  # std::stof rejects subnormals
}


@pytest.mark.parametrize("case", sorted(IDENTITY_PAIRS))
def test_identity_pairs_and_odd_floats_verify(tmp_path, capsys, case):
    spec = IDENTITY_PAIRS[case]
    body = (f'layer {{ name: "a" {spec} bottom: "data" top: "a" }}\n'
            f'layer {{ name: "b" {spec} bottom: "a" top: "a" }}')
    p = write(tmp_path, "net.prototxt", net_text((2, 3, 4, 4), body))
    rc, _, err = run(capsys, ["verify", p])
    assert rc == 0, err


@pytest.mark.parametrize("case", sorted(PARAMETER_CASES))
def test_parameters_caffe_refuses_are_located_errors(tmp_path, capsys, case):
    dims, body, must = PARAMETER_CASES[case]
    p = write(tmp_path, "net.prototxt", net_text(dims, body))
    assert_refused(capsys, tmp_path, ["convert", p, "-o", tmp_path / "out" / "m"], [f"{p}", *must])


#: net-structure problems: (prototxt text, pieces the error must hold)
STRUCTURE_CASES = {
    "input-and-no-layers": (net_text((1, 3, 8, 8), ""), ["no layers"]),
    "input-declared-twice": ('name: "n"\ninput: "data"\ninput_shape { dim: 1 dim: 3 }\n'
                             'input: "data"\ninput_shape { dim: 1 dim: 5 }\n'
                             'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }\n', ["declared twice"]),
    "input-field-and-input-layer": (net_text((1, 3), 'layer { name: "i" type: "Input" top: "data" '
                                                    'input_param { shape { dim: 1 dim: 5 } } }\n'
                                                    'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }'),
                                    ["already declared"]),
    "internal-type": (net_text((1, 3, 8, 8), 'layer { name: "c" type: "_BatchNormScale" bottom: "data" top: "c" }'),
                      ["(_BatchNormScale): unsupported layer type"]),
    "reads-its-own-output": (net_text((1, 3), 'layer { name: "r" type: "ReLU" bottom: "x" top: "x" }'),
                             ["written only by this layer itself"]),
    "only-silence": (net_text((1, 3), 'layer { name: "s" type: "Silence" bottom: "data" }'), ["has no output"]),
}


@pytest.mark.parametrize("case", sorted(STRUCTURE_CASES))
def test_net_structure_problems(tmp_path, capsys, case):
    text, must = STRUCTURE_CASES[case]
    p = write(tmp_path, "net.prototxt", text)
    assert_refused(capsys, tmp_path, ["convert", p, "-o", tmp_path / "out" / "m"], [f"{p}", *must])


def test_error_text_is_bounded(tmp_path, capsys):
    """A 7 MB line is echoed cut to MAX_ECHO characters; 1,999 problems show the first
    MAX_LISTED and a count of the rest."""
    huge = "layer { name: \"" + "x" * (7 << 20) + "\" type: \"ReLU\" bottom: \"data\" top: \"y\" junk }\n"
    p = write(tmp_path, "long.prototxt", net_text((1, 3), "") + huge)
    err = assert_refused(capsys, tmp_path, ["convert", p, "-o", tmp_path / "out" / "m"], [f"{p}"])
    assert len(err) < 20 * MAX_ECHO, f"{len(err)} characters of error"
    assert max(len(line) for line in err.splitlines()) < MAX_ECHO + 200

    many = "".join(f'layer {{ name: "l{i}" type: "ReLU" bottom: "missing{i}" top: "t{i}" }}\n' for i in range(1999))
    p = write(tmp_path, "many.prototxt", net_text((1, 3), many))
    err = assert_refused(capsys, tmp_path, ["convert", p, "-o", tmp_path / "out" / "m"],
                         ["1999 problems", "missing0", f"and {1999 - MAX_LISTED} more"], max_lines=MAX_LISTED + 3)
    assert f"missing{MAX_LISTED - 1}'" in err and f"missing{MAX_LISTED}'" not in err


def test_output_over_an_input_is_refused(tmp_path, capsys):
    from test_bad_inputs import GOOD_NET, good_blobs, write_model
    p = write(tmp_path, "net.prototxt", GOOD_NET)
    w = write_model(tmp_path / "net-0000.params", good_blobs())  # a caffemodel named like an output
    assert_refused(capsys, tmp_path, ["convert", p, w, "-o", tmp_path / "net", "--force"], ["is an input"])
    assert_refused(capsys, tmp_path, ["init-weights", p, "-o", p, "--force"], ["is an input"])
    assert_refused(capsys, tmp_path, ["export-onnx", p, w, "-o", p, "--force"], ["is an input"])


def test_existing_outputs_are_kept_without_force(tmp_path, capsys):
    """A second run into the same outputs is refused, naming them; --force replaces them."""
    from test_bad_inputs import GOOD_NET
    p = write(tmp_path, "net.prototxt", GOOD_NET)
    out = tmp_path / "out"
    assert run(capsys, ["convert", p, "-o", out / "m", "-q", "--seed", "1"])[0] == 0
    assert_refused(capsys, tmp_path, ["convert", p, "-o", out / "m", "--seed", "2"], ["already exist", "--force"])
    before = tree_state(out)
    assert run(capsys, ["convert", p, "-o", out / "m", "-q", "--seed", "2", "--force"])[0] == 0
    after = tree_state(out)
    assert set(after) == set(before)
    assert after["m-0000.params"] != before["m-0000.params"] and after["m-namemap.json"] != before["m-namemap.json"]
    for cmd in (["init-weights", p, "-o", out / "w.caffemodel"], ["export-onnx", p, "-o", out / "n.onnx"]):
        assert run(capsys, cmd + ["-q"])[0] == 0
        assert_refused(capsys, tmp_path, cmd, ["already exist"])
        assert run(capsys, cmd + ["-q", "--force"])[0] == 0


def test_output_name_taken_by_a_directory_keeps_the_users_files(tmp_path, capsys):
    """PREFIX-namemap.json is a directory: refused before any work, and the user's other
    PREFIX-* files (and the directory's content) are left alone, even with --force."""
    from test_bad_inputs import GOOD_NET
    p = write(tmp_path, "net.prototxt", GOOD_NET)
    out = tmp_path / "out"
    (out / "m-namemap.json").mkdir(parents=True)
    (out / "m-namemap.json" / "keep.txt").write_text("mine")
    (out / "m-symbol.json").write_text("the user's own file")
    (out / "m-notes.txt").write_text("also mine")
    for extra in ([], ["--force"]):
        assert_refused(capsys, tmp_path, ["convert", p, "-o", out / "m", *extra], ["is a directory"])


def test_export_onnx_into_an_existing_directory(tmp_path, capsys):
    from test_bad_inputs import GOOD_NET
    p = write(tmp_path, "net.prototxt", GOOD_NET)
    (tmp_path / "onnx").mkdir()
    assert run(capsys, ["export-onnx", p, "-o", tmp_path / "onnx", "-q"])[0] == 0
    assert (tmp_path / "onnx" / "net.onnx").is_file()
    (tmp_path / "onnx2" / "net.onnx").mkdir(parents=True)  # the file name inside is taken by a directory
    assert_refused(capsys, tmp_path, ["export-onnx", p, "-o", tmp_path / "onnx2"], ["is a directory"])


@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_init_weights_into_an_unwritable_place(tmp_path, capsys, where):
    from test_bad_inputs import GOOD_NET
    p = write(tmp_path, "net.prototxt", GOOD_NET)
    if where == "under-a-file":
        write(tmp_path, "a_file", "x")
        target = tmp_path / "a_file" / "w.caffemodel"
    else:
        target = Path("/proc/w.caffemodel")
    assert_refused(capsys, tmp_path, ["init-weights", p, "-o", target], [str(target.parent)])
    assert not os.path.exists("/proc/w.caffemodel")
