"""Bad inputs through the CLI, as a user meets them: `caffe2mx convert` and `python -m caffe2mx convert`.

Every case must exit with code 2, print a short message (no traceback) on stderr that names
the file (and line/layer where there is one), and leave the directory tree exactly as it was:
no partial PREFIX-* files and no leftover staging/temporary files.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import write_test_caffemodel


VENV_BIN = Path(sys.executable).parent
RUNNERS = {
    "console": [str(VENV_BIN / "caffe2mx")],
    "module": [sys.executable, "-m", "caffe2mx"],
}

GOOD_NET = '''name: "good"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc" inner_product_param { num_output: 5 } }
'''


def good_blobs(conv_w_shape=(4, 3, 3, 3)):
    rng = np.random.default_rng(0)
    return {"conv1": [rng.standard_normal(conv_w_shape).astype(np.float32), np.zeros(4, np.float32)],
            "fc": [rng.standard_normal((5, 144)).astype(np.float32), np.zeros(5, np.float32)]}


def write_model(path, blobs, text=GOOD_NET):
    return write_test_caffemodel(path, blobs, text=text, net_name="good")


def snapshot(root):
    """Every path under root with its size: any new or changed file shows up."""
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_size if p.is_file() else 0)
            for p in Path(root).rglob("*")}


def run_cli(runner, args, cwd, env=None):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(RUNNERS[runner] + ["convert"] + [str(a) for a in args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=120)


def check_failure(runner, tmp_path, args, must_contain, env=None, max_lines=8):
    """Run, then assert exit 2, a short traceback-free stderr containing every expected piece,
    and an unchanged tree under tmp_path (out/ is pre-made so an output path exists)."""
    (tmp_path / "out").mkdir(exist_ok=True)
    before = snapshot(tmp_path)
    r = run_cli(runner, args, tmp_path, env)
    err = r.stderr
    assert r.returncode == 2, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{err}"
    assert "Traceback" not in err and "Traceback" not in r.stdout, err
    assert len(err.strip().splitlines()) <= max_lines, err
    for piece in must_contain:
        assert str(piece) in err, f"{piece!r} not in stderr:\n{err}"
    assert snapshot(tmp_path) == before, f"files changed: {sorted(set(snapshot(tmp_path)) ^ set(before))}"
    return err


runners = pytest.mark.parametrize("runner", list(RUNNERS))


def net_file(tmp_path, text, name="net.prototxt"):
    p = tmp_path / name
    p.write_text(text)
    return p


@runners
def test_syntax_error_names_file_line_column(tmp_path, runner):
    text = GOOD_NET.replace('kernel_size: 3 }', 'kernel_size: 3 ', 1)  # unbalanced brace on line 5
    text = text.replace('layer { name: "relu1"', 'layer { name "relu1"')  # missing colon, line 6
    p = net_file(tmp_path, text)
    err = check_failure(runner, tmp_path, [p, "-o", tmp_path / "out" / "m"], [f"{p}:", "syntax error"])
    line_col = err.split(f"{p}:", 1)[1].split(":")[:2]
    assert all(x.strip().isdigit() for x in line_col), err


@runners
def test_unknown_types_listed_together_python_never_imported(tmp_path, runner):
    """All unsupported layers in one error; a Python layer's module is never imported."""
    mods = tmp_path / "pymods"
    mods.mkdir()
    marker = tmp_path / "IMPORTED"
    (mods / "c2mx_evil_layer.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    text = GOOD_NET + '''layer { name: "weird" type: "FancyNorm" bottom: "fc" top: "weird" }
layer { name: "py" type: "Python" bottom: "fc" top: "py"
        python_param { module: "c2mx_evil_layer" layer: "Evil" } }
'''
    p = net_file(tmp_path, text)
    lines = {name: i + 1 for i, l in enumerate(text.splitlines()) for name in ("weird", "py")
             if f'name: "{name}"' in l}
    check_failure(runner, tmp_path, [p, "-o", tmp_path / "out" / "m"],
                  [f"{p}:{lines['weird']}", "'weird' (FancyNorm)", f"{p}:{lines['py']}", "'py' (Python)",
                   "Supported layer types", "Convolution", "Interp", "BN"],
                  env={"PYTHONPATH": str(mods)}, max_lines=10)
    assert not marker.exists(), "the Python layer's module was imported"


@runners
def test_missing_bottom(tmp_path, runner):
    p = net_file(tmp_path, GOOD_NET.replace('bottom: "conv1" top: "fc"', 'bottom: "nowhere" top: "fc"'))
    check_failure(runner, tmp_path, [p, "-o", tmp_path / "out" / "m"], [f"{p}:7", "'fc'", "nowhere"])


@runners
def test_cycle(tmp_path, runner):
    text = '''name: "cyc"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "a" type: "Eltwise" bottom: "data" bottom: "b" top: "a" }
layer { name: "b" type: "ReLU" bottom: "a" top: "b" }
'''
    p = net_file(tmp_path, text)
    check_failure(runner, tmp_path, [p, "-o", tmp_path / "out" / "m"], [f"{p}:", "cycle", "'a'"])


@runners
def test_two_layers_write_one_top(tmp_path, runner):
    text = GOOD_NET + '''layer { name: "conv2" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 } }
'''
    p = net_file(tmp_path, text)
    check_failure(runner, tmp_path, [p, "-o", tmp_path / "out" / "m"], [f"{p}:8", "'conv2'", "conv1"])


@runners
def test_blob_shape_disagrees_with_prototxt(tmp_path, runner):
    p = net_file(tmp_path, GOOD_NET)
    m = write_model(tmp_path / "w.caffemodel", good_blobs(conv_w_shape=(4, 2, 3, 3)))
    check_failure(runner, tmp_path, [p, m, "-o", tmp_path / "out" / "m"],
                  ["conv1", "[4, 2, 3, 3]", "[4, 3, 3, 3]", "w.caffemodel"])


@runners
def test_caffemodel_lacks_layer_blobs(tmp_path, runner):
    p = net_file(tmp_path, GOOD_NET)
    blobs = good_blobs()
    del blobs["fc"]
    m = write_model(tmp_path / "w.caffemodel", blobs)
    check_failure(runner, tmp_path, [p, m, "-o", tmp_path / "out" / "m"], ["'fc'", "w.caffemodel"])


@runners
@pytest.mark.parametrize("kind", ["truncated", "text", "random"])
def test_caffemodel_not_readable_as_protobuf(tmp_path, runner, kind):
    p = net_file(tmp_path, GOOD_NET)
    m = write_model(tmp_path / "w.caffemodel", good_blobs())
    raw = m.read_bytes()
    if kind == "truncated":
        m.write_bytes(raw[: len(raw) * 2 // 3])
    elif kind == "text":
        m.write_text(GOOD_NET)  # a prototxt given where the weights belong
    else:
        m.write_bytes(np.random.default_rng(1).bytes(4096))
    check_failure(runner, tmp_path, [p, m, "-o", tmp_path / "out" / "m"], [str(m)])


@runners
@pytest.mark.parametrize("which", ["prototxt", "caffemodel"])
def test_missing_path(tmp_path, runner, which):
    p = tmp_path / "absent.prototxt" if which == "prototxt" else net_file(tmp_path, GOOD_NET)
    m = tmp_path / "absent.caffemodel"
    check_failure(runner, tmp_path, [p, m, "-o", tmp_path / "out" / "m"],
                  [str(p if which == "prototxt" else m), "no such file"])


@runners
@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_unwritable_output_directory(tmp_path, runner, where):
    """Tests run as root, so a chmod'ed directory would still be writable: the output
    "directory" is instead a path under a regular file (ENOTDIR), or under /proc, where no
    one can create files."""
    p = net_file(tmp_path, GOOD_NET)
    m = write_model(tmp_path / "w.caffemodel", good_blobs())
    if where == "under-a-file":
        (tmp_path / "some_file").write_text("not a directory\n")
        out_dir = tmp_path / "some_file"
    else:
        out_dir = Path("/proc")
    check_failure(runner, tmp_path, [p, m, "-o", out_dir / "m"], [str(out_dir)])
    assert not list(Path("/proc").glob("m-*")) and not list(Path("/proc").glob(".m.*"))


@runners
@pytest.mark.parametrize("which", ["prototxt", "caffemodel"])
def test_directory_given_as_file(tmp_path, runner, which):
    d = tmp_path / "a_dir"
    d.mkdir()
    args = [d] if which == "prototxt" else [net_file(tmp_path, GOOD_NET), d]
    check_failure(runner, tmp_path, args + ["-o", tmp_path / "out" / "m"], [str(d), "directory"])


@runners
def test_default_output_prefix_leaves_nothing(tmp_path, runner):
    """Without -o the default out/<name> is used: a failing conversion must not leave an out/ behind."""
    p = net_file(tmp_path, GOOD_NET.replace('bottom: "conv1" top: "fc"', 'bottom: "nowhere" top: "fc"'))
    before = snapshot(tmp_path)
    r = run_cli(runner, [p], tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert snapshot(tmp_path) == before


def test_good_net_converts(tmp_path):
    """Control: the same net and weights the failure cases start from convert cleanly."""
    p = net_file(tmp_path, GOOD_NET)
    m = write_model(tmp_path / "w.caffemodel", good_blobs())
    (tmp_path / "out").mkdir()
    r = run_cli("console", [p, m, "-o", tmp_path / "out" / "m"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["m-0000.params", "m-namemap.json", "m-symbol.json"]
