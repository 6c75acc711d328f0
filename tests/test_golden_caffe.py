"""Every real-Caffe golden case converts, and every blob of the MXNet run matches Caffe's."""
import numpy as np
import pytest

from caffe2mx.converter.pipeline import convert_net, load_net
from caffe2mx.verify.metrics import GOLDEN_RTOL, compare
from caffe2mx.verify.mxnet_run import run_blobs

from conftest import GOLDEN, assert_ownership, golden_cases, need_shared


@pytest.mark.parametrize("case", golden_cases())
def test_mxnet_matches_caffe(case):
    folder = need_shared(GOLDEN / case["folder"])
    weights = folder / "weights.caffemodel"
    conv = convert_net(load_net(folder / "net.prototxt", weights if weights.exists() else None))
    assert_ownership(conv)
    caffe = np.load(folder / "blobs.npz")
    inputs = {name: caffe[name] for name in conv.name_map["inputs"]}
    got = run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, inputs)
    compared = 0
    for blob, value in got.items():
        if blob not in caffe.files:
            continue
        d = compare(value, caffe[blob])
        assert d.shape_ok, f"{blob}: shape {value.shape} vs Caffe {caffe[blob].shape}"
        assert d.nonfinite_ok, f"{blob}: NaN/inf positions differ from Caffe"
        assert d.max_rel <= GOLDEN_RTOL, f"{blob}: max relative error {d.max_rel:.2e}"
        compared += 1
    non_split = [b for b in caffe.files if "_split_" not in b]
    assert compared == len(non_split), f"compared {compared} of {len(non_split)} Caffe blobs"
