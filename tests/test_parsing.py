"""Tolerant prototxt parsing: unknown fields kept with their lines and listed once, real
syntax errors still located at file:line:col.

Expected lines and columns are found by searching the test's own text for the token
(independently of the scanner); expected parses come from protobuf's text_format on a
hand-written copy of the net without the unknown fields.
"""
import re

import pytest
from google.protobuf import text_format

from caffe2mx.converter.errors import MAX_LISTED, ModelError, ModelErrors
from caffe2mx.converter.graph import build_graph
from caffe2mx.converter.layers import base as layer_registry
from caffe2mx.converter.prototxt import _layer_block_lines, parse_prototxt_text, read_prototxt
from caffe2mx.converter.proto import caffe_pb
from caffe2mx.converter.shapes import check_supported

from conftest import SHARED, need_shared

CORPUS = SHARED / "fixtures" / "corpus"


def where(text, token, nth=0):
    """1-based (line, column) of the nth occurrence of `token` in `text`."""
    pos = -1
    for _ in range(nth + 1):
        pos = text.index(token, pos + 1)
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


FORK_NET = '''name: "forky"  # a comment with { braces and "quotes"
mem_param { optimize_test: true }
input: "data"
input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
  pooling_param { pool: MAXX kernel_size: 2 kernal_size: 3, stride: 2 extra: [1, -2] }
  weird_param { a: 1 b { c: "} not a brace" } d: 'x' "y" }
}
layer <name: "relu" type: "ReLU" bottom: "pool" top: "pool" relu_param: { negative_slope: 0.5 fancy: -inf }>
'''
# The same net as text_format knows it: the unknown fields and the unknown enum value removed.
FORK_NET_KNOWN = '''name: "forky"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
  pooling_param { kernel_size: 2 stride: 2 } }
layer { name: "relu" type: "ReLU" bottom: "pool" top: "pool" relu_param { negative_slope: 0.5 } }
'''


def test_unknown_fields_kept_with_layer_path_and_position():
    parsed = parse_prototxt_text(FORK_NET, "forky.prototxt")
    got = [(u.container, u.index, u.path, u.value, (u.line, u.column)) for u in parsed.unknown_fields]
    assert got == [
        (None, None, "mem_param", None, where(FORK_NET, "mem_param")),
        ("layer", 0, "pooling_param.pool", "MAXX", where(FORK_NET, "pool: MAXX")),
        ("layer", 0, "pooling_param.kernal_size", None, where(FORK_NET, "kernal_size")),
        ("layer", 0, "pooling_param.extra", None, where(FORK_NET, "extra")),
        ("layer", 0, "weird_param", None, where(FORK_NET, "weird_param")),
        ("layer", 1, "relu_param.fancy", None, where(FORK_NET, "fancy")),
    ]
    assert parsed.net == text_format.Parse(FORK_NET_KNOWN, caffe_pb.NetParameter())
    assert parsed.layer_lines == (where(FORK_NET, "layer {")[0], where(FORK_NET, "layer <")[0])
    assert [u.path for u in parsed.unknown_in("layer", 1)] == ["relu_param.fancy"]
    assert [u.path for u in parsed.net_unknown_fields] == ["mem_param"]


def test_close_names_are_suggested():
    by_path = {u.path: u for u in parse_prototxt_text(FORK_NET).unknown_fields}
    assert by_path["pooling_param.kernal_size"].describe() == "pooling_param.kernal_size (did you mean kernel_size?)"
    assert by_path["pooling_param.pool"].describe() == "pooling_param.pool: MAXX (did you mean MAX?)"
    assert by_path["weird_param"].describe() == "weird_param"  # no *_param whose stem is close


GOOD = '''name: "g"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
'''


@pytest.mark.parametrize("case, broken, token", [
    ("unbalanced brace", GOOD.replace("kernel_size: 3 } }", "kernel_size: 3 }"), None),
    ("missing colon", GOOD.replace('layer { name: "relu"', 'layer { name "relu"'), '"relu"'),
    ("bad value", GOOD.replace("num_output: 4", "num_output: four"), "four"),
    ("negative unsigned", GOOD.replace("num_output: 4", "num_output: -4"), "-4"),
    ("bad token", GOOD.replace('top: "conv" }\n', 'top: "conv" } @\n'), "@"),
    ("error after an unknown field", GOOD.replace("kernel_size: 3", "kernel_sise: 3 stride: x"), "x }"),
])
def test_syntax_errors_keep_file_line_column(case, broken, token):
    with pytest.raises(ModelError) as info:
        parse_prototxt_text(broken, "net.prototxt")
    err = info.value
    assert err.file == "net.prototxt" and "syntax error" in err.message, case
    assert err.line is not None and err.column is not None, case
    if token is None:  # the brace missing on line 5 is noticed at the earliest where the block ends
        assert 5 <= err.line <= broken.count("\n") + 1, (case, str(err))
    else:
        assert (err.line, err.column) == where(broken, token), (case, str(err))
    assert str(err).startswith(f"net.prototxt:{err.line}:{err.column}: syntax error"), str(err)


def test_layer_lines_match_an_independent_brace_scan():
    text = GOOD + 'layer {\n name: "x" # not a { brace\n type: "ReLU" bottom: "conv" top: "conv" }\n'
    assert parse_prototxt_text(text).layer_lines == _layer_block_lines(text)[0] == (4, 6, 7)


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.prototxt")) if CORPUS.exists() else ["-"])
def test_corpus_needs_no_tolerance(name):
    """Every net of the corpus is fully known to the schema: parsing it tolerantly gives exactly what
    strict text_format gives (the V0 net included), and the same layer lines as a plain brace scan."""
    path = need_shared(CORPUS / name)
    text = path.read_text(encoding="utf-8")
    parsed = parse_prototxt_text(text, str(path))
    assert parsed.unknown_fields == ()
    assert parsed.net == text_format.Parse(text, caffe_pb.NetParameter())
    assert (parsed.layer_lines, parsed.v1_layer_lines) == _layer_block_lines(text)


# A net with everything a user may hold at once: unsupported types, unknown fields on a supported
# layer and on an unsupported one, an unknown enum value, and unknown fields that only configure
# training (listed as notes, not as problems).
MANY = '''name: "many"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 16 input_dim: 16
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  param { lr_mult: 1 lr_boost: 2 }
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" spread: 2 }
    quantize_bits: 8 }
  sparsity_param { ratio: 0.5 } }
layer { name: "fancy" type: "FancyNorm" bottom: "conv" top: "fancy" fancy_param { k: 1 } }
layer { name: "pool" type: "Pooling" bottom: "fancy" top: "pool" pooling_param { pool: MEDIAN kernel_size: 2 } }
layer { name: "mystery" type: "Mystery" bottom: "pool" top: "mystery" }
layer { name: "train_only" type: "Dropout" bottom: "mystery" top: "mystery" include { phase: TRAIN }
  dropout_param { dropout_ratio: 0.5 spatial: true } }
'''


def test_one_error_lists_unknown_types_and_fields_with_lines():
    graph = build_graph(parse_prototxt_text(MANY, "many.prototxt"))
    with pytest.raises(ModelErrors) as info:
        check_supported(graph)
    text = str(info.value)
    line = lambda token: where(MANY, token)[0]  # noqa: E731
    fancy, mystery = line('name: "fancy"'), line('name: "mystery"')
    expected = [
        f"many.prototxt:{line('quantize_bits')}: layer 'conv' (Convolution): unknown field "
        f"convolution_param.quantize_bits",
        f"many.prototxt:{line('sparsity_param')}: layer 'conv' (Convolution): unknown field sparsity_param",
        f"many.prototxt:{fancy}: layer 'fancy' (FancyNorm): unsupported layer type",
        f"many.prototxt:{line('fancy_param')}: layer 'fancy' (FancyNorm): unknown field fancy_param",
        f"many.prototxt:{line('MEDIAN')}: layer 'pool' (Pooling): unknown field pooling_param.pool: MEDIAN",
        f"many.prototxt:{mystery}: layer 'mystery' (Mystery): unsupported layer type",
    ]
    for piece in expected:
        assert piece in text, f"{piece!r} not in\n{text}"
    assert text.startswith("many.prototxt: 2 unsupported layer(s):")
    # training-only configuration and layers outside the TEST phase are not problems
    for absent in ("lr_boost", "spread", "spatial", "train_only"):
        assert absent not in text, absent
    notes = "\n".join(graph.notes)
    assert "param.lr_boost" in notes and "convolution_param.weight_filler.spread" in notes
    assert "spatial" not in notes


def test_net_level_unknown_field_is_a_note():
    graph = build_graph(parse_prototxt_text(FORK_NET_KNOWN.replace('name: "forky"', 'name: "forky"\nopt_level: 3'),
                                            "n.prototxt"))
    assert any("n.prototxt:2:" in n and "opt_level" in n for n in graph.notes)
    check_supported(graph)


@pytest.mark.parametrize("ceil_mode, refused", [("false", True), ("true", False), (None, False)])
def test_fork_pooling_ceil_mode_needs_a_handler_that_converts_it(monkeypatch, ceil_mode, refused):
    """ceil_mode: false changes a BVLC Pooling layer's output size; unless the Pooling handler says it
    converts the field, the layer is refused rather than silently pooled with ceil."""
    extra = f" ceil_mode: {ceil_mode}" if ceil_mode else ""
    text = GOOD + f'layer {{ name: "p" type: "Pooling" bottom: "conv" top: "p" ' \
                  f'pooling_param {{ pool: MAX kernel_size: 2 stride: 2{extra} }} }}\n'
    graph = build_graph(parse_prototxt_text(text, "p.prototxt"))
    handler = layer_registry.handler_for("Pooling")
    monkeypatch.setattr(type(handler), "fork_fields", (), raising=False)
    if refused:
        with pytest.raises(ModelError, match=r"p.prototxt:7: layer 'p' \(Pooling\): sets pooling_param.ceil_mode"):
            check_supported(graph)
        monkeypatch.setattr(type(handler), "fork_fields", ("pooling_param.ceil_mode",), raising=False)
    check_supported(graph)


def test_ssd_net_lists_every_missing_type_with_its_line(monkeypatch):
    """The SSD deploy net with its detection types taken out of the registry: one error names every
    layer of those types, each with the line of its `layer {` block."""
    path = need_shared(CORPUS / "ssd300_vgg.prototxt")
    text = path.read_text(encoding="utf-8")
    removed = {"Normalize", "Permute", "PriorBox", "DetectionOutput", "Flatten"}
    for t in removed:
        monkeypatch.delitem(layer_registry._HANDLERS, t, raising=False)
    graph = build_graph(read_prototxt(path))
    with pytest.raises(ModelErrors) as info:
        check_supported(graph)
    listed = str(info.value)
    # independent of the parser: each layer's type and the line its block starts on
    blocks = [(m.start(), m.group(1)) for m in re.finditer(r'^layer \{\s*name: "([^"]+)"', text, re.M)]
    types = dict(re.findall(r'name: "([^"]+)"\s*type: "([^"]+)"', text))
    wanted = [(name, types[name], text.count("\n", 0, pos) + 1) for pos, name in blocks if types[name] in removed]
    assert len(wanted) > 20 and {t for _, t, _ in wanted} == removed
    shown = [w for w in wanted if f"{path}:{w[2]}: layer '{w[0]}' ({w[1]}): unsupported layer type" in listed]
    assert len(shown) == MAX_LISTED  # the first problems one per line, the list capped (issue 11)
    needs = next(ln for ln in listed.splitlines() if ln.startswith("The net needs: "))
    summary = dict(re.findall(r"(\w+) \(\d+ layers?, lines? ([\d, ]+)\)", needs))
    assert set(summary) == removed
    for name, type_, line in wanted:  # ... and every needed type with all its lines
        assert str(line) in summary[type_].split(", "), name
    assert [e.line for e in info.value.errors] == [w[2] for w in wanted]  # the API keeps every one
