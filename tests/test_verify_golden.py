"""verify against real Caffe: every golden case's blobs.npz (dumped by Caffe itself) is accepted
as `--reference` and every blob passes; and Attention-92 with seeded weights against NumPy.
"""
import json
from pathlib import Path

import pytest

from caffe2mx.cli import main
from caffe2mx.verification import verify

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT.parent / "shared" / "fixtures" / "caffe-golden"


def _cases():
    index = GOLDEN / "index.json"
    if not index.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"golden fixtures not found at {GOLDEN}"))]
    return [pytest.param(c["folder"], id=c["folder"]) for c in json.loads(index.read_text())["cases"]]


@pytest.mark.parametrize("folder", _cases())
def test_real_caffe_dump_passes(folder):
    case = GOLDEN / folder
    weights = case / "weights.caffemodel"
    run = verify(case / "net.prototxt", str(weights) if weights.is_file() else None,
                 reference=str(case / "blobs.npz"))
    assert run.outcome.passed, [(r.version, r.diff) for r in run.outcome.rows if not r.passed]
    assert not run.outcome.not_in_reference
    assert all("_split_" in n for n in run.outcome.unmatched_reference)
    assert run.input_source.startswith("stored in")


def test_attention92_seeded_passes_every_blob(capsys):
    net = ROOT / "prototxts" / "attention92.prototxt"
    rc = main(["verify", str(net), "--reference", "numpy", "-q"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "632 pass, 0 diverge" in out
