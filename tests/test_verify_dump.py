"""The standalone Caffe dump script, run against a fake pycaffe, and `verify --reference` on its .npz.

The fake `caffe` package is a few lines of Python that hands back known blobs (computed
here by the NumPy reference with the same seeded weights), so the round trip is exact
and blob names with '/', '..', spaces and backslashes must come back unchanged.
"""
import ast
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import caffe2mx
from caffe2mx.cli import main
from caffe2mx.commands.dump_script import script_path
from caffe2mx.verify import numpy_ref
from caffe2mx.verify.inputs import random_inputs
from caffe2mx.verify.references import INPUT_PREFIX, META_KEY
from test_verify_nets import HOSTILE, MINI_ATTENTION, write_net

FAKE_CAFFE = textwrap.dedent('''
    """A stand-in for pycaffe: Net returns the blobs stored in $FAKE_CAFFE_BLOBS."""
    import json
    import os
    from collections import OrderedDict

    import numpy as np

    __version__ = "1.0.0-fake-fork"
    TEST = 1

    def set_mode_cpu():
        pass

    class _Blob:
        def __init__(self, shape):
            self.data = np.zeros(shape, np.float32)

        def reshape(self, *shape):
            if tuple(shape) != self.data.shape:
                self.data = np.zeros(shape, np.float32)

    class _Layer:
        def __init__(self, type_):
            self.type = type_

    class Net:
        def __init__(self, prototxt, phase, weights=None):
            spec = json.loads(open(os.environ["FAKE_CAFFE_SPEC"]).read())
            with np.load(os.environ["FAKE_CAFFE_BLOBS"]) as z:
                self._known = OrderedDict((k, z[k]) for k in spec["order"])
            self.inputs = spec["inputs"]
            self.layers = [_Layer(t) for t in spec["types"]]
            self.blobs = OrderedDict((k, _Blob(v.shape)) for k, v in self._known.items())

        def forward(self):
            for name in self.inputs:
                if not np.array_equal(self.blobs[name].data, self._known[name]):
                    raise ValueError("fake caffe: unexpected input for " + name)
            for name, value in self._known.items():
                self.blobs[name].data[...] = value
''')


def _fake_caffe(tmp_path, net, seed=3):
    """Fake pycaffe dir, the input .npy, and the blobs it will hand back."""
    conv = caffe2mx.convert(net)
    graph = conv.net.graph
    inputs = random_inputs({b: graph.inputs[b] for b in graph.inputs}, seed)
    blobs = {k: v.astype(np.float32) for k, v in numpy_ref.forward(graph, inputs).blobs.items()}
    pkg = tmp_path / "fakecaffe" / "caffe"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE_CAFFE)
    with open(tmp_path / "known.npz", "wb") as fh:
        np.savez(fh, **blobs)
    spec = {"order": list(blobs), "inputs": list(graph.inputs), "types": [n.type for n in graph.nodes]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (name,) = list(inputs)
    np.save(tmp_path / "input.npy", inputs[name])
    return blobs


def _run_script(tmp_path, net, out):
    env = {"PYTHONPATH": str(tmp_path / "fakecaffe"), "FAKE_CAFFE_BLOBS": str(tmp_path / "known.npz"),
           "FAKE_CAFFE_SPEC": str(tmp_path / "spec.json"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(script_path()), str(net), "-o", str(out),
                           "--input", str(tmp_path / "input.npy")], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("text", [MINI_ATTENTION, HOSTILE], ids=["mini_attention", "hostile_names"])
def test_dump_round_trip_through_verify(tmp_path, capsys, text):
    net = write_net(tmp_path, text)
    blobs = _fake_caffe(tmp_path, net)
    out = tmp_path / "acts.npz"
    proc = _run_script(tmp_path, net, out)
    assert proc.returncode == 0, proc.stderr
    with np.load(out) as z:
        names = set(z.files)
        meta = json.loads(str(z[META_KEY]))
        assert {k for k in names if k != META_KEY and not k.startswith(INPUT_PREFIX)} == set(blobs)
        for k, v in blobs.items():
            np.testing.assert_array_equal(z[k], v)
    assert meta["caffe_version"] == "1.0.0-fake-fork"
    if "Interp" in text:
        assert meta["fork_layer_types"] == ["BN", "Interp"]
    rc = main(["verify", str(net), "--reference", str(out), "--all", "-q", "--report", str(tmp_path / "rep")])
    report = capsys.readouterr().out
    assert rc == 0, report
    assert "against caffe" in report
    rows = json.loads((tmp_path / "rep" / "report.json").read_text())["rows"]
    assert {r["blob"] for r in rows} == set(blobs)


def test_verify_uses_the_stored_input(tmp_path, capsys):
    net = write_net(tmp_path, MINI_ATTENTION)
    _fake_caffe(tmp_path, net, seed=11)
    out = tmp_path / "acts.npz"
    assert _run_script(tmp_path, net, out).returncode == 0
    from caffe2mx.verification import verify
    run = verify(net, reference=str(out))
    assert run.outcome.passed and run.input_source.startswith("stored in")
    assert run.reference.meta["inputs"] == ["data"]


def test_dump_script_imports_only_numpy_and_caffe():
    tree = ast.parse(script_path().read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    third_party = mods - set(sys.stdlib_module_names)
    assert third_party == {"numpy", "caffe"}


def test_dump_script_command_prints_and_copies(tmp_path, capsys):
    assert main(["dump-script"]) == 0
    assert capsys.readouterr().out.strip() == str(script_path())
    assert main(["dump-script", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "caffe_dump.py").read_text() == script_path().read_text()


def test_bad_reference_file_is_a_usage_error(tmp_path, capsys):
    net = write_net(tmp_path, MINI_ATTENTION)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    assert main(["verify", str(net), "--reference", str(bad), "-q"]) == 2
    assert "cannot read" in capsys.readouterr().err
    with open(tmp_path / "other.npz", "wb") as fh:
        np.savez(fh, unrelated=np.zeros(3))
    assert main(["verify", str(net), "--reference", str(tmp_path / "other.npz"), "-q"]) == 2
