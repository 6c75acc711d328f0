"""Graph pictures: labels, escaping of any name, grouping by prefix with working links."""
import re
from pathlib import Path

import pytest

import caffe2mx
from caffe2mx.cli import main
from caffe2mx.converter.graph import build_graph
from caffe2mx.converter.prototxt import read_prototxt
from caffe2mx.converter.shapes import infer_shapes
from caffe2mx.verify import graphs
from test_verify_nets import HOSTILE, MINI_ATTENTION, write_net

ROOT = Path(__file__).resolve().parents[1]
needs_dot = pytest.mark.skipif(not graphs.have_dot(), reason="graphviz `dot` not installed (apt-get install graphviz)")


def _caffe(path):
    graph = build_graph(read_prototxt(path))
    return graph, infer_shapes(graph)


def _links(text):
    return re.findall(r'URL="([^"]+)"', text)


def test_labels_carry_type_and_output_shape(tmp_path):
    graph, shapes = _caffe(write_net(tmp_path, MINI_ATTENTION))
    g = graphs.caffe_graph(graph, shapes, {"A/mask/pool": ("diverges", 0.5)})
    node = next(n for n in g.nodes if n.name == "A/mask/pool")
    assert node.lines == ["A/mask/pool", "Pooling", "1x8x8x8"] and node.status == "diverges"
    dot = graphs.build_pages(g)[""]
    assert graphs.COLOURS["diverges"] in dot and "1x8x8x8" in dot


def test_attention_modules_collapse_and_every_link_resolves():
    graph, shapes = _caffe(ROOT / "prototxts" / "attention92.prototxt")
    pages = graphs.build_pages(graphs.caffe_graph(graph, shapes))
    overview = pages[""]
    units = len(re.findall(r"^  u\d+ \[", overview, re.M))
    assert units <= graphs.MAX_UNITS
    for module in ("AttentionA_1", "AttentionB_1", "AttentionB_2", "AttentionC_1", "AttentionC_2", "AttentionC_3"):
        assert f'label="{module}\\n' in overview, module
    names = {graphs.page_name(p) for p in pages if p}
    for prefix, dot in pages.items():
        for link in _links(dot):
            target = link.split("/")[-1]
            assert target in names or (prefix and link == "../index.svg"), (prefix, link)
    grouped = sum(int(m) for m in re.findall(r'\\n(\d+) layers"', overview))
    assert grouped + units - overview.count("box3d") == len(graph.nodes) + len(graph.inputs)


def test_hostile_names_are_escaped():
    text = HOSTILE + 'layer { name: "q\\"uote" type: "ReLU" bottom: "a b\\\\c:d*e?" top: "q\\"uote" }\n'
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        graph, shapes = _caffe(write_net(Path(tmp), text))
    dot = graphs.build_pages(graphs.caffe_graph(graph, shapes))[""]
    assert '\\"uote' in dot and "a b\\\\c:d*e?" in dot
    if graphs.have_dot():
        svg = graphs.render_svg(dot)
        assert "../../x" in svg and ("q&quot;uote" in svg or 'q"uote' in svg)


def test_mxnet_graph_groups_ops_under_their_caffe_layer(tmp_path):
    conv = caffe2mx.convert(write_net(tmp_path, MINI_ATTENTION))
    g = graphs.mxnet_graph(conv.symbol, conv.name_map)
    names = {n.name for n in g.nodes}
    assert "A/mask/interp" in names and "A/prod" in names and "data" in names
    assert not any(n.lines[0].endswith("_weight") for n in g.nodes)


@needs_dot
def test_visualize_command_writes_linked_pages(tmp_path, capsys):
    out = tmp_path / "viz"
    rc = main(["visualize", str(ROOT / "prototxts" / "attention56.prototxt"), "-o", str(out), "-q"])
    assert rc == 0
    assert (out / "caffe.svg").is_file() and (out / "mxnet.svg").is_file()
    for stem in ("caffe", "mxnet"):
        overview = (out / f"{stem}.svg").read_text()
        assert "<svg" in overview
        links = _links_svg(overview)
        assert links, "large nets get group pages"
        for link in links:
            assert (out / link).is_file(), link
        for page in (out / stem).glob("*.svg"):
            for link in _links_svg(page.read_text()):
                assert (page.parent / link).resolve().is_file(), (page.name, link)


def _links_svg(svg):
    return re.findall(r'xlink:href="([^"]+)"', svg)


def test_visualize_small_net_and_bad_args(tmp_path, capsys):
    net = write_net(tmp_path, MINI_ATTENTION)
    if graphs.have_dot():
        assert main(["visualize", str(net), "-o", str(tmp_path / "v"), "-q", "--no-mxnet"]) == 0
        assert not _links_svg((tmp_path / "v" / "caffe.svg").read_text())
    assert main(["visualize", str(net), "--max-nodes", "1", "-q"]) == 2
    assert main(["visualize", str(tmp_path / "missing.prototxt"), "-o", str(tmp_path / "w"), "-q"]) == 2
