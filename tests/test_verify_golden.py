"""verify against real Caffe: every golden case's blobs.npz (dumped by Caffe itself) is accepted
as `--reference` and every blob passes; and Attention-92 with seeded weights against NumPy.
"""
import pytest

from caffe2mx.cli import main
from caffe2mx.verification import verify
from conftest import GOLDEN, REPO, golden_cases


@pytest.mark.parametrize("entry", golden_cases())
def test_real_caffe_dump_passes(entry):
    case = GOLDEN / entry["folder"]
    weights = case / "weights.caffemodel"
    run = verify(case / "net.prototxt", str(weights) if weights.is_file() else None,
                 reference=str(case / "blobs.npz"))
    assert run.outcome.passed, [(r.version, r.diff) for r in run.outcome.rows if not r.passed]
    assert not run.outcome.not_in_reference
    assert all("_split_" in n for n in run.outcome.unmatched_reference)
    assert run.input_source.startswith("stored in")


def test_attention92_seeded_passes_every_blob(capsys):
    net = REPO / "prototxts" / "attention92.prototxt"
    rc = main(["verify", str(net), "--reference", "numpy", "-q"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "632 pass, 0 diverge" in out
