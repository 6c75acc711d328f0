"""init-weights writes standard, seeded, realistic caffemodels; convert's files load with
plain MXNet (mx.mod.Module, gluon.SymbolBlock.imports) without caffe2mx."""
import json
import subprocess
import sys

import numpy as np
import pytest

from caffe2mx.converter.caffemodel import read_caffemodel
from caffe2mx.converter.proto import caffe_pb

from conftest import UPSTREAM, need_shared

CLI = [sys.executable, "-m", "caffe2mx"]


@pytest.fixture(scope="module")
def a56_weights(tmp_path_factory):
    proto = need_shared(UPSTREAM / "Attention-56-deploy.prototxt")
    out = tmp_path_factory.mktemp("w") / "a56.caffemodel"
    r = subprocess.run(CLI + ["init-weights", str(proto), "-o", str(out), "--seed", "5"], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return proto, out


def test_init_weights_is_standard_and_seeded(a56_weights, tmp_path):
    proto, out = a56_weights
    net = caffe_pb.NetParameter.FromString(out.read_bytes())
    assert all(l.phase == caffe_pb.TEST for l in net.layer)
    learnable = [l for l in net.layer if l.blobs]
    assert {l.type for l in learnable} == {"Convolution", "BN", "InnerProduct"}
    assert all(len(b.shape.dim) > 0 and len(b.data) == np.prod(b.shape.dim) for l in learnable for b in l.blobs)
    again = tmp_path / "again.caffemodel"
    subprocess.run(CLI + ["init-weights", str(proto), "-o", str(again), "--seed", "5"], check=True, timeout=600)
    assert again.read_bytes() == out.read_bytes()


def test_bn_statistics_have_real_spread(a56_weights):
    w = read_caffemodel(a56_weights[1])
    bn = [v.blobs for v in w.values() if v.type == "BN"]
    scale, shift, mean, inv = (np.concatenate([b[i].ravel() for b in bn]) for i in range(4))
    assert 0.5 <= scale.min() and scale.max() <= 1.5 and np.abs(scale - 1).mean() > 0.15
    assert np.abs(shift).mean() > 0.05
    assert np.abs(mean).mean() > 0.1
    assert np.abs(np.log(inv)).mean() > np.log(1.5), "inverse stds should sit well away from 1"
    conv = [v.blobs[0] for v in w.values() if v.type == "Convolution"]
    gains = [c.std() * np.sqrt(np.prod(c.shape[1:]) / 2) for c in conv]
    assert 0.25 <= min(gains) and max(gains) <= 4.5 and np.std(np.log(gains)) > 0.3


LOADER = r"""
import sys, json
sys.modules["caffe2mx"] = None  # prove the files need nothing of caffe2mx
import mxnet as mx, numpy as np
prefix, shape = sys.argv[1], tuple(json.loads(sys.argv[2]))
x = mx.nd.array(np.random.default_rng(0).uniform(-1, 1, shape))
sym, args, auxs = mx.model.load_checkpoint(prefix, 0)
mod = mx.mod.Module(sym, data_names=["data"], label_names=None, context=mx.cpu())
mod.bind(data_shapes=[("data", shape)], for_training=False)
mod.set_params(args, auxs)
mod.forward(mx.io.DataBatch([x]), is_train=False)
a = mod.get_outputs()[0].asnumpy()
net = mx.gluon.SymbolBlock.imports(prefix + "-symbol.json", ["data"], prefix + "-0000.params")
b = net(x).asnumpy()
print(json.dumps([list(a.shape), float(np.abs(a - b).max()), float(a.sum())]))
"""


def test_converted_files_load_with_plain_mxnet(a56_weights, tmp_path):
    proto, weights = a56_weights
    prefix = tmp_path / "a56"
    r = subprocess.run(CLI + ["convert", str(proto), str(weights), "-o", str(prefix), "-q"], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["a56-0000.params", "a56-namemap.json", "a56-symbol.json"]
    import mxnet as mx
    keys = mx.nd.load(str(prefix) + "-0000.params").keys()
    assert all(k.startswith(("arg:", "aux:")) for k in keys) and any(k.startswith("aux:") for k in keys)
    name_map = json.loads((tmp_path / "a56-namemap.json").read_text())
    assert name_map["blobs"]["cls"] == name_map["outputs"]["cls"]
    assert name_map["layers"]["conv1/bn"]["params"] == ["arg:conv1_bn_gamma", "arg:conv1_bn_beta",
                                                       "aux:conv1_bn_moving_mean", "aux:conv1_bn_moving_var"]
    run = subprocess.run([sys.executable, "-c", LOADER, str(prefix), "[2, 3, 224, 224]"], capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    shape, diff, total = json.loads(run.stdout.strip().splitlines()[-1])
    assert shape == [2, 1000] and diff < 1e-5 and abs(total - 2.0) < 1e-3
