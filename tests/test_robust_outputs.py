"""Outputs are all old or all new: staging, --force, interruptions (SIGINT/SIGTERM at any
moment, in-process and in a real subprocess), failures in the middle of the moves, and
converted files of two generations or damaged, which every reader refuses with a located error."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import caffe2mx
from caffe2mx.converter import model_files, staging
from caffe2mx.converter.errors import ModelError

from test_robust_cli import assert_refused, run, tree_state, write

NET = '''name: "out"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 8 kernel_size: 3 } }
layer { name: "bn" type: "BN" bottom: "conv" top: "conv" }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param { num_output: 4 } }
'''


def staged_dirs(root):
    return [p for p in Path(root).rglob("*") if ".staging-" in p.name]


@pytest.fixture
def old_generation(tmp_path, capsys):
    """out/m-* converted with seed 1: the files a later run must not half-replace."""
    p = write(tmp_path, "net.prototxt", NET)
    assert run(capsys, ["convert", p, "-o", tmp_path / "out" / "m", "-q", "--seed", "1"])[0] == 0
    return p, tree_state(tmp_path / "out")


def _signal_self(signum):
    os.kill(os.getpid(), signum)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_writing_keeps_the_old_files(tmp_path, capsys, monkeypatch, old_generation, signum):
    import mxnet as mx
    p, old = old_generation
    real_save = mx.nd.save

    def save_then_signal(path, data):
        real_save(path, data)  # half of the new generation is staged
        _signal_self(signum)

    monkeypatch.setattr(mx.nd, "save", save_then_signal)
    rc, _, err = run(capsys, ["convert", p, "-o", tmp_path / "out" / "m", "--seed", "2", "--force"])
    assert rc == 128 + signum and "nothing was written" in err and "Traceback" not in err, err
    assert tree_state(tmp_path / "out") == old and not staged_dirs(tmp_path)
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None) or callable(signal.getsignal(signal.SIGTERM))


def test_signal_during_the_moves_completes_them(tmp_path, capsys, monkeypatch, old_generation):
    """A signal that comes while the files are being moved into place waits until all are:
    the new generation is complete (it loads), and the run still reports the interruption."""
    p, old = old_generation
    real_replace = os.replace
    sent = []

    def replace_with_signal(a, b):
        if not sent:
            sent.append(1)
            _signal_self(signal.SIGTERM)
        return real_replace(a, b)

    monkeypatch.setattr(staging.os, "replace", replace_with_signal)
    rc, _, err = run(capsys, ["convert", p, "-o", tmp_path / "out" / "m", "--seed", "2", "--force"])
    assert rc == 128 + signal.SIGTERM and "complete" in err, err
    new = tree_state(tmp_path / "out")
    assert set(new) == set(old) and new["m-0000.params"] != old["m-0000.params"]
    caffe2mx.load(tmp_path / "out" / "m")
    assert not staged_dirs(tmp_path)


def test_failure_in_the_middle_of_the_moves_restores_the_old_files(tmp_path, capsys, monkeypatch, old_generation):
    p, old = old_generation
    real_replace = os.replace
    calls = []

    def failing_second(a, b):
        calls.append(b)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(b))
        return real_replace(a, b)

    monkeypatch.setattr(staging.os, "replace", failing_second)
    assert_refused(capsys, tmp_path / "out", ["convert", p, "-o", tmp_path / "out" / "m", "--seed", "2", "--force"],
                   ["No space left on device", "nothing was changed"])
    assert tree_state(tmp_path / "out") == old and not staged_dirs(tmp_path)


def test_created_directories_are_removed_on_failure(tmp_path, monkeypatch):
    import mxnet as mx

    def broken_save(path, data):
        raise OSError(5, "Input/output error", path)

    monkeypatch.setattr(mx.nd, "save", broken_save)
    p = write(tmp_path, "net.prototxt", NET)
    before = tree_state(tmp_path)
    assert caffe2mx.cli.main(["convert", str(p), "-o", str(tmp_path / "a" / "b" / "m"), "-q"]) == 2
    assert tree_state(tmp_path) == before


def test_files_of_two_generations_are_refused(tmp_path, capsys, old_generation):
    """What a kill -9 between two moves (or a copy by hand) would leave: a new symbol and name
    map beside old params. Every reader refuses it, naming the file that does not belong."""
    p, _ = old_generation
    out = tmp_path / "out"
    assert run(capsys, ["convert", p, "-o", out / "new", "-q", "--seed", "2"])[0] == 0
    assert run(capsys, ["convert", p.parent / "net.prototxt", "-o", out / "mixed", "-q", "--seed", "2"])[0] == 0
    shutil.copyfile(out / "m-0000.params", out / "mixed-0000.params")  # old params, new symbol + name map
    with pytest.raises(ModelError, match="does not belong"):
        caffe2mx.load(out / "mixed")
    for cmd in (["export-onnx", "--symbol", out / "mixed", "-o", tmp_path / "x.onnx"],
                ["verify", "--model", out / "mixed"], ["inspect", "--model", out / "mixed"],
                ["visualize", "--model", out / "mixed", "-o", tmp_path / "g", "--no-mxnet"]):
        assert_refused(capsys, tmp_path, cmd, ["mixed-0000.params", "does not belong"])


@pytest.mark.parametrize("damage", ["truncate-params", "truncate-symbol", "edit-namemap", "flip-params"])
def test_damaged_converted_files_are_refused(tmp_path, capsys, old_generation, damage):
    out = tmp_path / "out"
    target = {"truncate-params": "m-0000.params", "truncate-symbol": "m-symbol.json",
              "edit-namemap": "m-namemap.json", "flip-params": "m-0000.params"}[damage]
    data = bytearray((out / target).read_bytes())
    if damage.startswith("truncate"):
        data = data[: len(data) // 2]
    elif damage == "flip-params":
        data[len(data) // 2] ^= 0x40
    else:
        data = bytearray(bytes(data).replace(b'"conv"', b'"conv2"', 1))
    (out / target).write_bytes(bytes(data))
    for cmd in (["export-onnx", "--symbol", out / "m", "-o", tmp_path / "x.onnx"], ["verify", "--model", out / "m"]):
        assert_refused(capsys, tmp_path, cmd, [target])


def test_a_resealed_edit_loads_and_a_broken_name_map_is_refused(tmp_path, old_generation):
    """An edit made on purpose and recorded with reseal() loads; a name map whose structure is
    wrong is refused even when sealed."""
    import json
    out = tmp_path / "out"
    nm = json.loads((out / "m-namemap.json").read_text())
    nm["net"] = "renamed"
    (out / "m-namemap.json").write_text(json.dumps(nm))
    with pytest.raises(ModelError, match="changed after it was written"):
        caffe2mx.load(out / "m")
    model_files.reseal(out / "m")
    assert caffe2mx.load(out / "m").name_map["net"] == "renamed"
    nm["inputs"] = ["data"]
    (out / "m-namemap.json").write_text(json.dumps(nm))
    model_files.reseal(out / "m")
    with pytest.raises(ModelError, match="'inputs' is missing or not a mapping"):
        caffe2mx.load(out / "m")


def test_missing_parameter_is_named(tmp_path, old_generation):
    import mxnet as mx
    out = tmp_path / "out"
    params = mx.nd.load(str(out / "m-0000.params"))
    name = sorted(k for k in params if k.startswith("arg:"))[0]
    del params[name]
    mx.nd.save(str(out / "m-0000.params"), params)
    model_files.reseal(out / "m")
    with pytest.raises(ModelError, match=f"no value for parameter '{name[4:]}'"):
        caffe2mx.load(out / "m")


CONVERT = [sys.executable, "-m", "caffe2mx", "convert", "net.prototxt", "w.caffemodel", "-o", "out/m", "-q", "--force"]


def _big_net(root):
    """A net with about 40 MB of weights, so that writing takes a moment to hit."""
    from test_bad_inputs import write_model
    text = NET.replace("num_output: 4 }", "num_output: 24000 }")
    write(root, "net.prototxt", text)
    rng = np.random.default_rng(0)
    write_model(root / "w.caffemodel", {
        "conv": [rng.standard_normal((8, 3, 3, 3)).astype(np.float32), np.zeros(8, np.float32)],
        "bn": [np.ones((1, 8, 1, 1), np.float32)] * 4,
        "fc": [rng.standard_normal((24000, 288)).astype(np.float32), np.zeros(24000, np.float32)]}, text=text)


FEW_POINTS = (0.25, 0.6, 0.9)
MANY_POINTS = (0.2, 0.4, 0.55, 0.7, 0.8, 0.85, 0.9, 0.93, 0.96, 0.98, 1.0)


@pytest.mark.parametrize("points", [pytest.param(FEW_POINTS, id="4-points"),
                                    pytest.param(MANY_POINTS, id="12-points", marks=pytest.mark.slow)])
def test_sigterm_at_any_moment_leaves_old_or_new_never_a_mix(tmp_path, points):
    """A real `caffe2mx convert --force` over an existing generation, killed with SIGTERM at
    points spread over its run (as fractions of a full run's time; the last kill comes after
    the end): afterwards the outputs are exactly the old files or exactly those of a complete
    run, and no staging directory is left."""
    _big_net(tmp_path)
    env = dict(os.environ, MXNET_SUBGRAPH_VERBOSE="0")
    ref = tmp_path / "ref"  # a complete run of the very command, timed
    ref.mkdir()
    for f in ("net.prototxt", "w.caffemodel"):
        shutil.copyfile(tmp_path / f, ref / f)
    t0 = time.perf_counter()
    assert subprocess.run(CONVERT, cwd=ref, env=env).returncode == 0
    full = time.perf_counter() - t0
    seeded = CONVERT[:5] + CONVERT[6:] + ["--seed", "1"]  # the old generation: seeded weights, not the caffemodel
    assert subprocess.run(seeded, cwd=tmp_path, env=env).returncode == 0
    shutil.copytree(tmp_path / "out", tmp_path / "old")
    old = tree_state(tmp_path / "out")
    states = []
    for fraction in points + (None,):  # None: after the end (a multiple of `full` is not, on a loaded machine)
        shutil.rmtree(tmp_path / "out")
        shutil.copytree(tmp_path / "old", tmp_path / "out")
        proc = subprocess.Popen(CONVERT, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
        if fraction is None:
            _, err = proc.communicate(timeout=300)
            proc.send_signal(signal.SIGTERM)  # to a finished run: must change nothing
        else:
            time.sleep(full * fraction)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=300)
        assert "Traceback" not in err, err
        assert not staged_dirs(tmp_path)
        states.append((fraction, proc.returncode, tree_state(tmp_path / "out"), err))
    new = tree_state(ref / "out")
    assert states[-1][2] == new and new["m-0000.params"] != old["m-0000.params"], "the last run completed"
    caffe2mx.load(tmp_path / "out" / "m")
    for fraction, rc, state, err in states:
        when = "after the end" if fraction is None else f"at {fraction:.0%}"
        assert state in (old, new), f"a mix after SIGTERM {when} of the run (exit {rc}): {err}"
    assert any(state == old for _, _, state, _ in states), "some kills landed before the end of the run"
