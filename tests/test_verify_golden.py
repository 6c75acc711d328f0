"""verify against real Caffe: every golden case's blobs.npz (dumped by Caffe itself) is accepted as
`--reference` and every blob passes with default options; and Attention-92 with seeded
weights against the NumPy reference (a deep net in every default run).

Both golden sets are swept; a case whose layer type the converter does not support yet is
skipped with the converter's own error (other engineers are adding types).
"""
import pytest

from caffe2mx.cli import main
from caffe2mx.converter.errors import Caffe2MXError
from caffe2mx.converter.pipeline import read_net
from caffe2mx.verification import verify
from conftest import GOLDEN, REPO, SHARED, golden_cases

GOLDEN2 = SHARED / "fixtures" / "caffe-golden-2"
CASES = [pytest.param(GOLDEN, *p.values, id=p.id, marks=p.marks) for p in golden_cases()] + \
        [pytest.param(GOLDEN2, *p.values, id=f"set2-{p.id}", marks=p.marks) for p in golden_cases(GOLDEN2)]


def not_supported_yet(path, input_shapes=None):
    """Skip with the converter's own reason where it cannot read the net yet."""
    try:
        read_net(path, input_shapes)
    except Caffe2MXError as exc:
        pytest.skip(f"layer type not supported yet: {str(exc).splitlines()[0]}")


@pytest.mark.parametrize("root,entry", CASES)
def test_real_caffe_dump_passes(root, entry):
    case = root / entry["folder"]
    not_supported_yet(case / "net.prototxt")
    weights = case / "weights.caffemodel"
    run = verify(case / "net.prototxt", str(weights) if weights.is_file() else None,
                 reference=str(case / "blobs.npz"))
    assert run.outcome.passed, [(r.version, r.diff, r.note) for r in run.outcome.rows if not r.passed]
    assert not run.outcome.not_in_reference
    # Caffe's split copies, and blobs only a Silence layer reads (nothing computes them in MXNet)
    silenced = {run.graph.caffe_blob(b) for n in run.graph.nodes if n.type == "Silence" for b in n.bottoms}
    assert all("_split_" in n or n in silenced for n in run.outcome.unmatched_reference)
    assert run.input_source.startswith("stored in")
    assert all(r.drift_bound is not None for r in run.outcome.rows if r.layer), "the drift is judged too"


def test_wrong_bn_reading_against_caffe_names_the_option(capsys):
    """A fork BN converted with the other reading of its fourth blob: against Caffe's own dump,
    verify finds the BN inside conv -> BN -> ReLU (written in place: Caffe keeps only the last
    value) and says that the other reading reproduces Caffe's output."""
    case = GOLDEN / "bn_inplace_conv_relu"
    if not case.is_dir():
        pytest.skip(f"{case} is absent: the shared fixtures live beside the repository (../shared)")
    rc = main(["verify", str(case / "net.prototxt"), str(case / "weights.caffemodel"), "--reference",
               str(case / "blobs.npz"), "--bn-blob3", "variance", "-q"])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "first wrong layer: 'conv_bn' (BN)" in out, out
    assert "judged together at 'conv'" in out and "conv, conv_bn, conv_relu" in out, out
    assert "hint: --bn-blob3 inv_std" in out, out


def test_attention92_seeded_passes_every_blob(capsys):
    net = REPO / "prototxts" / "attention92.prototxt"
    rc = main(["verify", str(net), "--reference", "numpy", "-q"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "632 pass, 0 wrong, 0 drift past float32, 0 inherit" in out, out
