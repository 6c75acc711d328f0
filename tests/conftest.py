"""Shared test helpers: where ../shared is, and quiet MXNet."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
GOLDEN = SHARED / "fixtures" / "caffe-golden"
GOLDEN2 = SHARED / "fixtures" / "caffe-golden-2"  # BVLC types added after the first set
CORPUS = SHARED / "fixtures" / "corpus"
UPSTREAM = SHARED / "fixtures" / "upstream"
PROTOTXTS = sorted((REPO / "prototxts").glob("*.prototxt"))


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the tests marked slow (scripts/nightly.sh does)")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long sweeps (deep nets, large inputs), run by scripts/nightly.sh "
                                       "with --slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow (scripts/nightly.sh)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def need_shared(path):
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared fixtures live beside the repository (../shared)")
    return path


def assert_ownership(conv):
    """Every node of the converted symbol belongs to exactly one Caffe layer of the name map,
    and every operator is one its layer's handler declares (so the ONNX tie test covers it)."""
    import json
    from caffe2mx.converter.layers import handler_for
    nodes = json.loads(conv.symbol.tojson())["nodes"]
    owner, layers = conv.name_map["nodes"], conv.name_map["layers"]
    names = [n["name"] for n in nodes]
    assert len(names) == len(set(names)), "two MXNet nodes share a name"
    listed = {}
    for layer, entry in layers.items():
        for n in entry.get("nodes", []):
            assert n not in listed, f"node {n} listed under {listed[n]} and {layer}"
            listed[n] = layer
    for n in nodes:
        layer = owner.get(n["name"])
        assert layer in layers, f"MXNet node {n['name']} ({n['op']}) belongs to no Caffe layer"
        assert listed.get(n["name"]) == layer
        if n["op"] != "null":
            entry = layers[layer]
            type_ = entry.get("emitted_as") or ("_BatchNormScale" if entry.get("fused_with") else entry["type"])
            assert n["op"] in handler_for(type_).mx_ops, f"{type_} emitted undeclared op {n['op']}"


def golden_cases(root=None):
    """One pytest param per case in ROOT/index.json (a real-Caffe golden set), id'd by folder,
    the case's index entry as value; one skipped param when ../shared is absent."""
    import json
    root = GOLDEN if root is None else root
    index = root / "index.json"
    if not index.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{root} is absent: the shared fixtures live "
                                                                 f"beside the repository (../shared)"))]
    return [pytest.param(c, id=c["folder"]) for c in json.loads(index.read_text())["cases"]]


def write_test_caffemodel(path, blobs, types=None, text=None, net_name="test"):
    """A standard (V2) caffemodel holding `blobs` ({layer: arrays}); each layer's type comes
    from `types` ({layer: type}) or, with `text`, from that prototxt's own layer blocks."""
    from google.protobuf import text_format
    from caffe2mx.converter.caffemodel import write_caffemodel
    from caffe2mx.converter.proto import caffe_pb
    if text is not None:
        net = text_format.Parse(text, caffe_pb.NetParameter())
        layers = [(lp, blobs[lp.name]) for lp in net.layer if lp.name in blobs]
    else:
        layers = [(caffe_pb.LayerParameter(name=n, type=types[n]), b) for n, b in blobs.items()]
    write_caffemodel(str(path), net_name, layers)
    return path


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False,
                     help="also run tests marked slow (full-length training runs; CAFFE2MX_SLOW=1 too)")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: full-length runs, skipped unless --slow or CAFFE2MX_SLOW=1")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow") or os.environ.get("CAFFE2MX_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --slow (or CAFFE2MX_SLOW=1)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
