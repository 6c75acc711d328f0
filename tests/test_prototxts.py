"""Tests for prototxts/: the generator, the committed files, and the nets they describe.

Published figures used here (parameter counts, depth spec, mask unit counts) come from
the project's facts sheet, ../shared/docs/architectures.md, section 1
("Parameter counts, brief spec, Caffe-faithful", "Mask units per module", "AttentionNeXt").
"""
import importlib.util
import math
import re
from pathlib import Path

import pytest
from google.protobuf import text_format

from caffe2mx.converter.proto import caffe_pb

REPO = Path(__file__).resolve().parent.parent
PROTOTXTS = REPO / "prototxts"
UPSTREAM = REPO.parent / "shared" / "fixtures" / "upstream"


def _load_generator():
    spec = importlib.util.spec_from_file_location("prototxts_generate", PROTOTXTS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()

# Independent of the generator: (family, depth, (p, t, r), (m1, m2, m3), conv+fc in M, tolerance in M),
# from architectures.md section 1 (depth spec in "Decisions", counts in the parameter table
# and the AttentionNeXt paragraph).
FACTS = {
    "attention56": ("attention", 56, (1, 2, 1), (1, 1, 1), 31.738, 0.001),
    "attention92": ("attention", 92, (1, 2, 1), (1, 2, 3), 52.333, 0.001),
    "attention128": ("attention", 128, (1, 2, 1), (3, 3, 3), 57.297, 0.001),
    "attention164": ("attention", 164, (1, 2, 1), (4, 4, 4), 70.077, 0.001),
    "attention236": ("attention", 236, (1, 2, 1), (6, 6, 6), 95.636, 0.001),
    "attention452": ("attention", 452, (2, 4, 3), (6, 6, 6), 175.852, 0.001),
    "attentionnext56": ("attentionnext", 56, (1, 2, 1), (1, 1, 1), 31.22, 0.01),
    "attentionnext92": ("attentionnext", 92, (1, 2, 1), (1, 2, 3), 51.93, 0.01),
}
NAMES = sorted(FACTS)
MASK_POOLS = (3, 2, 1)          # stage A, B, C max-pools in the mask branch
STAGE_LETTERS = "ABC"


def parse_text(text):
    return text_format.Parse(text, caffe_pb.NetParameter())


def parse_file(path):
    return parse_text(Path(path).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def committed():
    return {name: parse_file(PROTOTXTS / (name + ".prototxt")) for name in NAMES}


def test_generator_covers_the_listed_nets():
    assert sorted(gen.SPECS) == NAMES
    for name, (family, depth, ptr, m, _, _) in FACTS.items():
        assert tuple(gen.SPECS[name]) == (family, depth, ptr, m)


# --- equality with the original release ------------------------------------------------------

UPSTREAM_PAIRS = [("attention56", "Attention-56-deploy.prototxt"),
                  ("attentionnext56", "AttentionNeXt-56-deploy.prototxt")]


@pytest.mark.parametrize("name,original", UPSTREAM_PAIRS)
def test_matches_upstream_layer_by_layer(name, original):
    path = UPSTREAM / original
    if not path.is_file():
        pytest.skip("upstream originals not available at %s" % UPSTREAM)
    want = parse_file(path)
    got = parse_text(gen.render(name))
    assert list(got.input) == list(want.input)
    assert list(got.input_dim) == list(want.input_dim)
    assert len(got.input_shape) == len(want.input_shape) == 0
    assert len(got.layer) == len(want.layer)
    for i, (g, w) in enumerate(zip(got.layer, want.layer)):
        where = "layer %d (%s)" % (i, w.name)
        assert g.name == w.name, where
        assert g.type == w.type, where
        assert list(g.bottom) == list(w.bottom), where
        assert list(g.top) == list(w.top), where
        assert [f.name for f, _ in g.ListFields()] == [f.name for f, _ in w.ListFields()], where
        assert list(g.param) == list(w.param), where
        for field, value in w.ListFields():
            assert getattr(g, field.name) == value, "%s: field %s" % (where, field.name)
        assert g == w, where
    assert got == want


# --- committed files are what the generator writes --------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_committed_file_is_generated(name):
    path = PROTOTXTS / (name + ".prototxt")
    assert path.read_text(encoding="utf-8") == gen.render(name), \
        "%s is stale: run python prototxts/generate.py" % path.name


def test_check_mode_reports_stale_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gen, "HERE", str(tmp_path))
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
    target = tmp_path / "attention92.prototxt"
    target.write_text(target.read_text() + "# edited\n")
    (tmp_path / "attention128.prototxt").unlink()
    capsys.readouterr()
    assert gen.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "attention92.prototxt" in err and "attention128.prototxt" in err
    assert "attention56.prototxt" not in err
    assert target.read_text().endswith("# edited\n")


# --- every file is a valid net ------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_net_is_valid(name, committed):
    net = committed[name]
    assert list(net.input) == ["data"] and list(net.input_dim) == [1, 3, 224, 224]
    produced = set(net.input)
    names = set()
    for layer in net.layer:
        assert layer.name not in names, "duplicate layer name %s" % layer.name
        names.add(layer.name)
        for bottom in layer.bottom:
            assert bottom in produced, "%s reads %s before any layer writes it" % (layer.name, bottom)
        if layer.type == "ReLU":
            assert list(layer.top) == list(layer.bottom), "%s is not in place" % layer.name
        else:
            for top in layer.top:
                assert top not in produced, "%s overwrites %s" % (layer.name, top)
        produced.update(layer.top)
    assert net.layer[-1].type == "Softmax"


# --- structure and size follow from the spec --------------------------------------------------

def mask_units(pools, r):
    """architectures.md: stage 1 = 6r+2, stage 2 = 4r+1, stage 3 = 2r mask units per module."""
    return {3: 6 * r + 2, 2: 4 * r + 1, 1: 2 * r}[pools]


def expected_counts(family, p, t, r, m):
    modules = sum(m)
    units = 6 + sum(mi * (2 * p + t + mask_units(n, r)) for mi, n in zip(m, MASK_POOLS))
    projections = 4
    interps = sum(mi * n for mi, n in zip(m, MASK_POOLS))
    counts = {
        "Convolution": 1 + 3 * units + projections + 2 * modules,
        "Interp": interps,
        "Pooling": 2 + interps,
        "Eltwise": units + sum(mi * (n - 1) for mi, n in zip(m, MASK_POOLS)) + 2 * modules,
        "Sigmoid": modules,
        "InnerProduct": 1,
        "Softmax": 1,
    }
    if family == "attention":
        # two inside each unit, one on each unit's input, conv1, mask head (2), final
        counts["BN"] = counts["ReLU"] = 3 * units + 1 + 2 * modules + 1
    else:
        counts["BN"] = 3 * units + projections + 1 + modules
        counts["ReLU"] = 3 * units + 1 + modules
    return counts


def layer_shapes_and_weights(net):
    """Propagate (C, H, W) through the net; return the conv+fc weight count (biases included)."""
    shape = {net.input[0]: tuple(net.input_dim[1:])}
    weights = 0
    for layer in net.layer:
        ins = [shape[b] for b in layer.bottom]
        c, h, w = ins[0]
        if layer.type == "Convolution":
            cp = layer.convolution_param
            k = cp.kernel_size[0]
            pad = cp.pad[0] if cp.pad else 0
            stride = cp.stride[0] if cp.stride else 1
            assert c % cp.group == 0
            out = ((cp.num_output, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1))
            weights += cp.num_output * (c // cp.group) * k * k + (cp.num_output if cp.bias_term else 0)
        elif layer.type == "Pooling":
            pp = layer.pooling_param
            assert not pp.global_pooling and pp.pad == 0
            size = lambda n: int(math.ceil((n - pp.kernel_size) / pp.stride)) + 1  # Caffe rounds up
            out = (c, size(h), size(w))
        elif layer.type == "InnerProduct":
            ip = layer.inner_product_param
            out = (ip.num_output, 1, 1)
            weights += ip.num_output * c * h * w + (ip.num_output if ip.bias_term else 0)
        elif layer.type == "Interp":
            assert len(ins) == 2
            out = (c,) + ins[1][1:]
        elif layer.type == "Eltwise":
            assert all(s == ins[0] for s in ins), "%s adds mismatched shapes %s" % (layer.name, ins)
            out = ins[0]
        else:
            assert layer.type in ("BN", "ReLU", "Sigmoid", "Softmax"), layer.type
            out = ins[0]
        shape[layer.top[0]] = out
    return shape, weights


def trunk_units(net):
    """Residual sums outside the mask branch: each is one unit on the trunk path."""
    return [l for l in net.layer if l.type == "Eltwise" and "/mask/" not in l.name
            and any("/branch1/conv3_1x1" in b for b in l.bottom)]


@pytest.mark.parametrize("name", NAMES)
def test_structure_follows_spec(name, committed):
    family, depth, (p, t, r), m, _, _ = FACTS[name]
    net = committed[name]
    types = {}
    for layer in net.layer:
        types[layer.type] = types.get(layer.type, 0) + 1
    assert types == expected_counts(family, p, t, r, m)

    modules = [re.fullmatch(r"Attention([ABC])_(\d+)", l.name) for l in net.layer if l.type == "Eltwise"]
    modules = [mo.groups() for mo in modules if mo]
    for letter, mi in zip(STAGE_LETTERS, m):
        assert sorted(int(i) for s, i in modules if s == letter) == list(range(1, mi + 1))

    # depth = 3 * (units on the trunk path) + 2 (architectures.md: 3*[(2p+t)*sum(m) + 6] + 2)
    assert 3 * ((2 * p + t) * sum(m) + 6) + 2 == depth
    assert 3 * len(trunk_units(net)) + 2 == depth

    groups = {l.convolution_param.group for l in net.layer if l.type == "Convolution"}
    assert groups == ({1, 32} if family == "attentionnext" else {1})
    assert all(not l.convolution_param.bias_term for l in net.layer if l.type == "Convolution")
    assert all(l.bn_param.frozen for l in net.layer if l.type == "BN")


@pytest.mark.parametrize("name", NAMES)
def test_weight_count_matches_published(name, committed):
    expected, tol = FACTS[name][4:]
    shape, weights = layer_shapes_and_weights(committed[name])
    assert shape["classifier"] == (1000, 1, 1)
    assert shape["ave_pool"] == (2048, 1, 1)
    assert abs(weights / 1e6 - expected) <= tol + 1e-9, "%s: %.6fM, facts say %sM" % (name, weights / 1e6, expected)


@pytest.mark.parametrize("name", NAMES)
def test_mask_resizes_back_to_trunk(name, committed):
    """Each Interp lands on its reference's size: Caffe's ceil pooling makes 56->28->14->7 invertible."""
    shape, _ = layer_shapes_and_weights(committed[name])
    stage_size = {"A": 56, "B": 28, "C": 14}
    for layer in committed[name].layer:
        if layer.type == "Interp":
            size = stage_size[layer.name[len("Attention")]]
            if layer.name.endswith("interp_1"):
                assert shape[layer.top[0]][1:] == (size, size)
            assert shape[layer.top[0]] == shape[layer.bottom[1]]
