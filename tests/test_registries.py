"""The tables that must agree: layer handlers, NumPy reference, sweep cases, ONNX translators,
the README's layer table, and which package may import which."""
import ast
from pathlib import Path

import pytest

from caffe2mx.converter.errors import ModelErrors
from caffe2mx.converter.layers import all_handlers, family_of, is_internal, supported_types
from caffe2mx.converter.onnx_export import supported_ops
from caffe2mx.converter.prototxt import parse_prototxt_text
from caffe2mx.verify import numpy_ref

from conftest import REPO


def test_converter_and_numpy_reference_know_the_same_types():
    assert set(supported_types()) == set(numpy_ref.supported_types())


@pytest.mark.parametrize("type_", supported_types())
def test_handler_and_reference_live_in_files_of_one_family(type_):
    fam = family_of(type_)
    assert fam == numpy_ref.family_of(type_), (type_, fam, numpy_ref.family_of(type_))
    assert (REPO / "converter" / "layers" / f"{fam}.py").is_file()
    assert (REPO / "verify" / "numpy_ref" / f"{fam}.py").is_file()


def test_every_type_has_sweep_cases():
    from sweeps import all_cases
    seen = set()
    for case in all_cases():
        net = parse_prototxt_text(case.values[0]).net
        seen |= {layer.type for layer in net.layer}
    assert set(supported_types()) - seen == set()


def test_every_emitted_op_has_a_translator_and_no_translator_is_dead():
    emitted = {op for h in all_handlers().values() for op in h.mx_ops}
    translators = set(supported_ops())
    assert emitted - translators == set(), "MXNet ops a handler may emit but ONNX export cannot translate"
    assert translators - emitted == set(), "ONNX translators for ops no handler emits"


def test_internal_types_cannot_be_named_by_a_prototxt(tmp_path):
    from caffe2mx.converter.pipeline import read_net
    internal = [t for t in all_handlers() if is_internal(t)]
    assert internal
    p = tmp_path / "net.prototxt"
    p.write_text('input: "x" input_shape { dim: 1 dim: 2 dim: 3 dim: 3 }\n'
                 f'layer {{ name: "l" type: "{internal[0]}" bottom: "x" top: "y" }}\n')
    with pytest.raises(ModelErrors, match="unsupported layer type"):
        read_net(p)


def test_readme_layer_table_is_generated():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "layer_table.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr


def _imports(path):
    """Absolute module names a file imports (relative imports resolved against its package)."""
    rel = path.relative_to(REPO).with_suffix("")
    top = {"converter": "caffe2mx.converter", "verify": "caffe2mx.verify", "mxmodels": "caffe2mx.mxmodels",
           "caffe2mx": "caffe2mx"}[rel.parts[0]]
    package = ".".join([top] + list(rel.parts[1:-1]))
    if rel.name == "__init__":
        package = ".".join([top] + list(rel.parts[1:-1]))
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


FACADE = ("caffe2mx.api", "caffe2mx.cli", "caffe2mx.commands", "caffe2mx.seeding", "caffe2mx.verification",
          "caffe2mx.progress")


@pytest.mark.parametrize("folder,forbidden", [
    ("converter", ("caffe2mx.verify", "caffe2mx.mxmodels") + FACADE),
    ("verify", ("caffe2mx.mxmodels",) + FACADE),
])
def test_no_import_goes_up(folder, forbidden):
    """converter is the bottom layer, verify sits on it, and the facade (API, CLI, seeding,
    the verify session) on both: nothing imports upwards."""
    bad = []
    for path in sorted((REPO / folder).rglob("*.py")):
        for mod in _imports(path):
            if mod in ("caffe2mx",) or any(mod == f or mod.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(REPO)} imports {mod}")
    assert not bad, bad
