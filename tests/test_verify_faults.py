"""Planted conversion faults: verify must exit 1 and name the planted layer as the first wrong one.

Each fault is planted in a saved conversion (symbol JSON, params or name map edited, as a
buggy converter would have written them), then checked with `caffe2mx verify --model PREFIX`.
On small nets (every default run) and on two deep ones, Attention-92 and ResNet-101 (one
case by default, the sweep with `--slow`), where the fault must be told from float32 drift
through 100+ layers:

- a BN whose eps is off by 10x, at the first BN in the deeper half of the net where eps
  moves the output by >= 1e-4 (float32 noise at a BN is ~1e-6: metrics.TYPE_ROUNDING);
- the other reading of the fork BN's fourth blob (a variance instead of an inverse std);
- pooling rounded down (floor) instead of Caffe's ceil;
- one convolution's weights scaled by 1%;
- Interp resized without align-corners;
- an Eltwise SUM coefficient dropped: one term weighted 0 instead of 1.
"""
import copy
import json

import numpy as np
import pytest

import caffe2mx
from caffe2mx.cli import main
from caffe2mx.converter.layers.norm import fork_bn_to_mxnet
from caffe2mx.converter.pipeline import read_net, save
from caffe2mx.seeding import write_init_weights
from conftest import REPO, SHARED, need_shared
from test_verify_nets import MINI_ATTENTION, write_net

MINI_BVLC = r'''name: "mini-bvlc"
input: "data"
input_shape { dim: 1 dim: 3 dim: 12 dim: 12 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 bias_term: false } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 bias_term: false } }
layer { name: "bn2" type: "BatchNorm" bottom: "conv2" top: "conv2" }
layer { name: "scale2" type: "Scale" bottom: "conv2" top: "conv2" scale_param { bias_term: true } }
layer { name: "sum" type: "Eltwise" bottom: "conv1" bottom: "conv2" top: "sum" }
layer { name: "pool" type: "Pooling" bottom: "sum" top: "pool" pooling_param { pool: AVE global_pooling: true } }
'''


# -- editing a saved conversion -------------------------------------------------------------------
class Model:
    """A conversion's symbol JSON, params and name map, to be edited and saved as a buggy converter's."""

    def __init__(self, conv):
        self.data = json.loads(conv.symbol.tojson())
        self.args = dict(conv.arg_params)
        self.auxs = dict(conv.aux_params)
        self.name_map = copy.deepcopy(conv.name_map)
        self.graph = conv.net.graph

    def op(self, layer):
        name = self.name_map["layers"][layer]["mxnet_op"]
        return next(n for n in self.data["nodes"] if n["name"] == name)

    def param(self, layer, suffix):
        (name,) = [p[4:] for p in self.name_map["layers"][layer]["params"] if p.endswith("_" + suffix)]
        return name

    def set_param(self, name, value):
        import mxnet as mx
        table = self.args if name in self.args else self.auxs
        table[name] = mx.nd.array(np.asarray(value, np.float32))

    def insert_before(self, node_name, new):
        """Put a new node just before `node_name` (node ids are positions: renumber the rest)."""
        nodes = self.data["nodes"]
        pos = next(i for i, n in enumerate(nodes) if n["name"] == node_name)
        shift = lambda e: [e[0] + 1 if e[0] >= pos else e[0]] + list(e[1:])  # noqa: E731
        for n in nodes:
            n["inputs"] = [shift(e) for e in n["inputs"]]
        new["inputs"] = [shift(e) for e in new["inputs"]]
        nodes.insert(pos, new)
        self.data["arg_nodes"] = [i + 1 if i >= pos else i for i in self.data["arg_nodes"]]
        self.data["heads"] = [shift(e) for e in self.data["heads"]]
        self.data.pop("node_row_ptr", None)
        return pos

    def save(self, prefix):
        import mxnet as mx
        conv = caffe2mx.converter.model_files.Conversion(
            symbol=mx.sym.load_json(json.dumps(self.data)), arg_params=self.args, aux_params=self.auxs,
            name_map=self.name_map)
        save(conv, prefix)


def _pick(model, types, accept=lambda node: True, first=False):
    """The first layer of `types` in the deeper half of the net (`first`: in the whole net)."""
    nodes = model.graph.nodes
    return next(n for n in nodes[0 if first else len(nodes) // 2:] if n.type in types and accept(n))


def _eps_effect(node):
    """Largest relative change of a BN's output when its eps becomes 10x: 4.5 eps / (var + eps)."""
    if node.type == "BN":
        var, eps = 1.0 / np.asarray(node.blobs[3], np.float64).ravel() ** 2, node.param.bn_param.eps
    else:
        f = float(np.asarray(node.blobs[2]).ravel()[0])
        var, eps = np.asarray(node.blobs[1], np.float64).ravel() / f, node.param.batch_norm_param.eps
    return float(np.max(4.5 * eps / (var + eps)))


# -- the faults: each edits a Model and returns the layer verify must name ----------------------
def bn_eps_10x(m, first=False):
    node = _pick(m, ("BN", "BatchNorm"), lambda n: _eps_effect(n) >= 1e-4, first)
    op = m.op(node.name)
    op["attrs"]["eps"] = repr(10 * float(op["attrs"]["eps"]))
    return node.name


def bn_blob3_other_reading(m, first=False):
    node = _pick(m, ("BN",), first=first)
    gamma, beta, mean, var, _ = fork_bn_to_mxnet(*node.blobs, eps=node.param.bn_param.eps, blob3_mode="variance")
    for suffix, value in (("gamma", gamma), ("beta", beta), ("moving_mean", mean), ("moving_var", var)):
        m.set_param(m.param(node.name, suffix), value)
    return node.name


def pooling_floor(m, first=False):
    for node in m.graph.nodes:
        if node.type != "Pooling" or node.param.pooling_param.global_pooling:
            continue
        op = m.op(node.name)
        if op["op"] == "Pooling" and op["attrs"].get("pooling_convention") == "full":
            x = m.name_map["versions"][node.bottoms[0]]["shape"]
            k, s = eval(op["attrs"]["kernel"]), eval(op["attrs"]["stride"])
            p = eval(op["attrs"].get("pad", "(0, 0)"))
            if any((size + 2 * pp - kk) % ss for size, kk, ss, pp in zip(x[2:], k, s, p)):  # ceil != floor
                op["attrs"]["pooling_convention"] = "valid"
                return node.name
    raise AssertionError("no pooling layer where floor and ceil differ")


def conv_weights_1pct(m, first=False):
    node = _pick(m, ("Convolution",), first=first)
    name = m.param(node.name, "weight")
    m.set_param(name, m.args[name].asnumpy() * 1.01)
    return node.name


def interp_no_align_corners(m, first=False):
    node = _pick(m, ("Interp",), lambda n: m.op(n.name)["op"] == "_contrib_BilinearResize2D", first)
    m.op(node.name)["attrs"]["align_corners"] = "False"
    return node.name


def eltwise_coefficient_dropped(m, first=False):
    node = _pick(m, ("Eltwise",), lambda n: n.param.eltwise_param.operation == 1 and not n.param.eltwise_param.coeff,
                 first)
    op = m.op(node.name)
    name = f"{op['name']}_coeff_planted"
    m.insert_before(op["name"], {"op": "_mul_scalar", "name": name, "attrs": {"scalar": "0.0"},
                                 "inputs": [op["inputs"][1]]})
    op = m.op(node.name)
    op["inputs"][1] = [next(i for i, n in enumerate(m.data["nodes"]) if n["name"] == name), 0, 0]
    m.name_map["nodes"][name] = node.name
    m.name_map["layers"][node.name]["nodes"].append(name)
    return node.name


def scale_gamma_1pct(m, first=True):
    """The affine part of a fused BatchNorm+Scale: the Scale's gamma off by 1%."""
    node = next(n for n in m.graph.nodes if n.type == "Scale")
    bn = next(n for n in m.graph.nodes if n.type == "BatchNorm" and n.tops[0] == node.bottoms[0])
    name = m.param(bn.name, "gamma")
    m.set_param(name, m.args[name].asnumpy() * 1.01)
    return node.name


FAULTS = {f.__name__: f for f in (bn_eps_10x, bn_blob3_other_reading, pooling_floor, conv_weights_1pct,
                                  interp_no_align_corners, eltwise_coefficient_dropped)}


def _verify_planted(tmp_path, capsys, proto, conv, plant, weights=None):
    m = Model(conv)
    layer = plant(m)
    m.save(tmp_path / "model")
    argv = ["verify", str(proto)] + ([str(weights)] if weights else []) + ["--model", str(tmp_path / "model"), "-q"]
    rc = main(argv)
    out = capsys.readouterr().out
    return rc, out, layer


# -- small nets: every default run ------------------------------------------------------------------
MINI_CASES = [("mini_attention", f) for f in ("bn_eps_10x", "bn_blob3_other_reading", "pooling_floor",
                                              "conv_weights_1pct", "interp_no_align_corners")] + \
             [("mini_bvlc", f) for f in ("bn_eps_10x", "eltwise_coefficient_dropped", "conv_weights_1pct")]


@pytest.mark.parametrize("net,fault", MINI_CASES, ids=[f"{n}-{f}" for n, f in MINI_CASES])
def test_planted_fault_is_found_at_its_layer(tmp_path, capsys, net, fault):
    proto = write_net(tmp_path, MINI_ATTENTION if net == "mini_attention" else MINI_BVLC)
    rc, out, layer = _verify_planted(tmp_path, capsys, proto, caffe2mx.convert(proto), _first(FAULTS[fault]))
    assert rc == 1, out
    assert f"first wrong layer: '{layer}'" in out, out
    assert "its conversion is wrong" in out, out


def _first(plant):
    """The fault at the first layer it applies to (a tiny net has no deeper half to speak of)."""
    return lambda m: plant(m, first=True)


def test_fused_pair_names_its_part(tmp_path, capsys):
    """BatchNorm+Scale run as one MXNet BatchNorm: a wrong gamma is the Scale's, a wrong eps the BatchNorm's."""
    proto = write_net(tmp_path, MINI_BVLC)
    conv = caffe2mx.convert(proto)
    rc, out, layer = _verify_planted(tmp_path / "a", capsys, proto, conv, scale_gamma_1pct)
    assert rc == 1 and layer == "scale1", out
    assert "first wrong layer: 'scale1' (Scale)" in out, out
    assert "affine (gamma, beta) part differs" in out and "part 'bn1' (BatchNorm) alone" in out, out
    rc, out, layer = _verify_planted(tmp_path / "b", capsys, proto, conv, _first(bn_eps_10x))
    assert rc == 1 and "first wrong layer: 'bn1' (BatchNorm)" in out, out
    assert "normalising (moving mean, variance, eps) part differs" in out, out


def test_planted_fault_in_report_json(tmp_path):
    from caffe2mx.verify.report import write_report
    from caffe2mx.verification import verify
    net = write_net(tmp_path, MINI_ATTENTION)
    m = Model(caffe2mx.convert(net))
    layer = conv_weights_1pct(m, first=True)
    m.save(tmp_path / "model")
    run = verify(net, model=str(tmp_path / "model"))
    paths = write_report(run, tmp_path / "report")
    data = json.loads(open(paths["json"]).read())
    assert not data["passed"] and data["mode"] == "per-layer"
    first = data["first_divergence"]
    assert first["layer"] == layer and first["status"] == "diverges"
    assert first["diagnosis"]["layer"] == layer
    assert all(i["status"] == "pass" for i in first["input_rows"]) and first["input_rows"]
    statuses = [r["status"] for r in data["rows"]]
    assert "inherited" in statuses[statuses.index("diverges") + 1:]
    assert paths["arrays"], "failing blobs' arrays are written"
    with np.load(tmp_path / "report" / paths["arrays"][0]) as z:
        assert set(z.files) >= {"actual", "reference", "abs_diff", "free_running"}


def test_tolerance_options(tmp_path, capsys):
    net = write_net(tmp_path, MINI_ATTENTION)
    m = Model(caffe2mx.convert(net))
    conv_weights_1pct(m, first=True)
    m.save(tmp_path / "model")
    base = ["verify", str(net), "--model", str(tmp_path / "model"), "-q"]
    assert main(base) == 1
    assert main(base + ["--rtol", "1e9"]) == 0
    assert main(base + ["--strict"]) == 1
    assert main(base + ["--strict", "--rtol", "1e9"]) == 0
    assert main(base + ["--type-rtol", "Convolution=1e9"]) == 1, "the drift it causes is still judged end to end"
    assert main(base + ["--type-rtol", "nonsense"]) == 2
    assert main(base + ["--type-rtol", "Convolution=abc"]) == 2
    capsys.readouterr()
    assert main(base + ["--all"]) == 1
    assert capsys.readouterr().out.count("\n") > 18


def test_strict_mode_is_blob_by_blob(tmp_path, capsys):
    net = write_net(tmp_path, MINI_ATTENTION)
    m = Model(caffe2mx.convert(net))
    layer = conv_weights_1pct(m, first=True)
    m.save(tmp_path / "model")
    assert main(["verify", str(net), "--model", str(tmp_path / "model"), "--strict", "-q"]) == 1
    out = capsys.readouterr().out
    assert "blob by blob (--strict)" in out and f"first divergence: layer '{layer}'" in out, out
    assert "its conversion is wrong" in out, out


def test_a_layer_that_reads_what_it_may_not_is_wrong(tmp_path, capsys):
    """A symbol whose Eltwise reads another layer's output instead of its bottom: the mask branch
    it no longer reads is gone from the saved symbol (the first layer found wrong), and the
    Eltwise itself reads what is not its bottom."""
    net = write_net(tmp_path, MINI_ATTENTION)
    m = Model(caffe2mx.convert(net))
    names = [n["name"] for n in m.data["nodes"]]
    pool = names.index(m.op("A/mask/pool")["name"])
    fusion = m.op("A/fusion")
    fusion.update(op="elemwise_add", attrs={}, inputs=[[pool, 0, 0], fusion["inputs"][1]])
    m.save(tmp_path / "model")
    assert main(["verify", str(net), "--model", str(tmp_path / "model"), "-q", "--all"]) == 1
    out = capsys.readouterr().out
    assert "first wrong layer: 'A/mask/conv'" in out and "has no output 'A_mask_conv_output'" in out, out
    fusion_row = next(line for line in out.splitlines() if line.split()[1:2] == ["A/fusion"])
    assert fusion_row.endswith("WRONG"), out


# -- deep nets ------------------------------------------------------------------------------------
DEEP = {"attention92": REPO / "prototxts" / "attention92.prototxt",
        "resnet101": SHARED / "fixtures" / "corpus" / "resnet101.prototxt"}
APPLIES = {"attention92": sorted(FAULTS),
           "resnet101": ["bn_eps_10x", "conv_weights_1pct", "eltwise_coefficient_dropped", "pooling_floor"]}
DEFAULT_DEEP = ("resnet101", "bn_eps_10x")  # a fused BatchNorm+Scale 150 layers deep: the hardest to tell from drift
DEEP_CASES = [pytest.param(n, f, id=f"{n}-{f}", marks=() if (n, f) == DEFAULT_DEEP else pytest.mark.slow)
              for n in DEEP for f in APPLIES[n]]


@pytest.fixture(scope="module")
def deep_conversion(tmp_path_factory):
    cache = {}

    def get(name):
        if name not in cache:
            proto = need_shared(DEEP[name])
            weights = tmp_path_factory.mktemp(name) / "w.caffemodel"
            write_init_weights(read_net(proto), weights, seed=0)
            cache[name] = (proto, weights, caffe2mx.convert(proto, str(weights)))
        return cache[name]
    return get


@pytest.mark.parametrize("net,fault", DEEP_CASES)
def test_deep_net_fault_is_found_at_its_layer(tmp_path, capsys, deep_conversion, net, fault):
    proto, weights, conv = deep_conversion(net)
    rc, out, layer = _verify_planted(tmp_path, capsys, proto, conv, FAULTS[fault], weights)
    assert rc == 1, out
    assert f"first wrong layer: '{layer}'" in out, out
    assert "its conversion is wrong" in out, out
    if fault == "bn_blob3_other_reading":
        assert "hint: --bn-blob3 variance" in out, out
