"""caffe.proto: descriptor up to date, fork fields, the 147/148 clash, protobuf runtimes."""
import json
import subprocess
import sys

import numpy as np
import pytest
from google.protobuf import text_format

from caffe2mx.converter.caffemodel import read_caffemodel, write_caffemodel
from caffe2mx.converter.proto import DESCRIPTOR_PATH, caffe_pb

from conftest import GOLDEN, REPO, need_shared


def test_descriptor_matches_proto(tmp_path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools (the `test` extra) regenerates the descriptor")
    sys.path.insert(0, str(REPO / "scripts"))
    import build_proto
    out = tmp_path / "caffe.desc"
    build_proto.build(out)
    assert out.read_bytes() == DESCRIPTOR_PATH.read_bytes(), "run scripts/build_proto.py after editing caffe.proto"


def test_fork_field_numbers():
    fields = caffe_pb.LayerParameter.DESCRIPTOR.fields_by_name
    assert fields["interp_param"].number == 147 and fields["bn_param"].number == 148
    bn = {f.name: f.number for f in caffe_pb.BNParameter.DESCRIPTOR.fields}
    # RAN, TSN and PSPNet forks: 1-6; SegNet's fields moved off the numbers they share (1-3).
    assert bn == {"slope_filler": 1, "bias_filler": 2, "momentum": 3, "eps": 4, "frozen": 5, "engine": 6,
                  "scale_filler": 1001, "shift_filler": 1002, "bn_mode": 1003}
    interp = {f.name: f.number for f in caffe_pb.InterpParameter.DESCRIPTOR.fields}
    assert interp == {"height": 1, "width": 2, "zoom_factor": 3, "shrink_factor": 4, "pad_beg": 5, "pad_end": 6}
    assert caffe_pb.BNParameter().eps == pytest.approx(1e-5) and caffe_pb.BNParameter().momentum == pytest.approx(0.9)


def test_clip_and_swish_parse_by_name():
    net = text_format.Parse('layer { name: "c" type: "Clip" clip_param { min: -1 max: 2 } }'
                            'layer { name: "s" type: "Swish" swish_param { beta: 1.5 } }', caffe_pb.NetParameter())
    assert net.layer[0].clip_param.max == 2 and net.layer[1].swish_param.beta == 1.5


def test_fork_bn_param_round_trips_on_the_wire(tmp_path):
    layer = caffe_pb.LayerParameter(name="bn", type="BN")
    layer.bn_param.frozen = True
    layer.bn_param.eps = 2e-5
    blobs = [np.full((1, 3, 1, 1), i + 1, np.float32) for i in range(4)]
    path = tmp_path / "bn.caffemodel"
    write_caffemodel(path, "n", [(layer, blobs)])
    full = caffe_pb.NetParameter.FromString(path.read_bytes())
    assert full.layer[0].bn_param.frozen and full.layer[0].bn_param.eps == pytest.approx(2e-5)
    got = read_caffemodel(path)["bn"].blobs
    assert all(np.array_equal(a, b) for a, b in zip(got, blobs))


@pytest.mark.parametrize("case", ["clash_clip_148_bvlc", "clash_swish_147_bvlc"])
def test_bvlc_caffemodel_with_clashing_field_reads(case):
    """BVLC writes clip_param at 148 / swish_param at 147, the fork's bn/interp numbers."""
    folder = need_shared(GOLDEN / case)
    raw = (folder / "weights.caffemodel").read_bytes()
    assert b"clip1" in raw or b"swish1" in raw
    weights = read_caffemodel(folder / "weights.caffemodel")
    assert set(weights) == {"conv1", "conv2"}


SNIPPET = r"""
import sys, numpy as np
sys.path.insert(0, {root!r})
import importlib.util, types
# load only the proto package, without caffe2mx's other imports (mxnet is not on this path)
spec = importlib.util.spec_from_file_location("p", {init!r}, submodule_search_locations=[])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
import google.protobuf as gp
net = mod.caffe_pb.NetParameter(name="x"); l = net.layer.add(name="bn", type="BN"); l.bn_param.frozen = True
b = l.blobs.add(); b.shape.dim.extend([1, 2]); b.data.extend([1.5, 2.5])
w = mod.caffe_pb.WeightsNet.FromString(net.SerializeToString())
assert np.frombuffer(w.layer[0].blobs[0].data[0], "<f4").tolist() == [1.5, 2.5]
print(gp.__version__)
"""


@pytest.mark.parametrize("version", ["3.20.3", "4.25.8", "5.29.5", "6.33.5"])
def test_bindings_load_under_other_protobuf_runtimes(tmp_path, version):
    """The committed descriptor set works with any protobuf onnx may pull in (>= 3.20.2)."""
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                          f"protobuf=={version}"], capture_output=True, text=True, timeout=180)
    if pip.returncode != 0:
        pytest.skip(f"cannot install protobuf {version} here: {pip.stderr.strip()[-200:]}")
    code = SNIPPET.format(root=str(target), init=str(DESCRIPTOR_PATH.parent / "__init__.py"))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == version


def test_installed_runtime_is_what_onnx_accepts():
    import google.protobuf
    import onnx
    assert onnx.ModelProto.FromString(onnx.ModelProto(ir_version=8).SerializeToString()).ir_version == 8
    assert int(google.protobuf.__version__.split(".")[0]) >= 3
    json.dumps(google.protobuf.__version__)
