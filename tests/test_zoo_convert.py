"""Every zoo prototxt and both upstream originals convert; the MXNet symbol infers (1, 1000);
`inspect` reproduces the architecture facts' parameter counts and multiply-adds."""
import pytest

from caffe2mx.converter.inspect import inspect_net, totals
import numpy as np

from caffe2mx.converter.caffemodel import LayerBlobs
from caffe2mx.converter.graph import build_graph
from caffe2mx.converter.pipeline import convert_net, load_net, read_net
from caffe2mx.converter.prototxt import read_prototxt
from caffe2mx.converter.shapes import infer_shapes
from caffe2mx.converter.weights import expected_blob_shapes

from conftest import PROTOTXTS, UPSTREAM, assert_ownership

NETS = [pytest.param(p, id=p.stem) for p in PROTOTXTS] + [
    pytest.param(UPSTREAM / n, id=n, marks=pytest.mark.skipif(not (UPSTREAM / n).exists(),
                                                                reason="../shared/fixtures/upstream is absent"))
    for n in ("Attention-56-deploy.prototxt", "AttentionNeXt-56-deploy.prototxt")]

# ../shared/docs/architectures.md, section 1: "all" = conv+fc + BN gamma/beta + BN running stats,
# which is what every value stored in the Caffe blobs amounts to (inspect's convention).
FACTS_ALL = {"attention56": 31.883e6, "attention92": 52.600e6, "attention128": 57.637e6,
             "attention164": 70.514e6, "attention236": 96.267e6, "attention452": 177.147e6}
# conv+fc + BN gamma/beta ("+BN") for AttentionNeXt; "all" adds the same gamma/beta count again.
FACTS_NEXT_PLUS_BN = {"attentionnext56": 31.32e6, "attentionnext92": 52.10e6}
FACTS_MACS = {"attention56": 6.27e9, "attention92": 10.53e9, "attentionnext56": 6.42e9, "attentionnext92": 10.70e9}


@pytest.mark.parametrize("prototxt", NETS)
def test_converts_and_infers_imagenet_output(prototxt):
    graph = build_graph(read_prototxt(prototxt))
    need = expected_blob_shapes(graph, infer_shapes(graph))
    weights = {k: LayerBlobs(k, "", tuple(np.zeros(s, np.float32) for s in v), (False,) * len(v))
               for k, v in need.items()}
    conv = convert_net(load_net(prototxt, weights=weights))
    assert_ownership(conv)
    shape = tuple(conv.name_map["input_shapes"]["data"])
    _, out_shapes, _ = conv.symbol.infer_shape(data=shape)
    assert out_shapes == [(1, 1000)]
    assert set(conv.symbol.list_arguments()) - {"data"} == set(conv.arg_params)
    assert set(conv.symbol.list_auxiliary_states()) == set(conv.aux_params)


@pytest.mark.parametrize("prototxt", [p for p in PROTOTXTS], ids=[p.stem for p in PROTOTXTS])
def test_inspect_counts_match_architecture_facts(prototxt):
    rows = inspect_net(read_net(prototxt))
    t = totals(rows)
    name = prototxt.stem
    if name in FACTS_ALL:
        assert abs(t["params"] - FACTS_ALL[name]) < 0.0005e6 + 1, t
    else:
        bn = sum(r["params"] for r in rows if r["type"] == "BN")
        assert abs(t["params"] - bn / 2 - FACTS_NEXT_PLUS_BN[name]) < 0.005e6 + 1, t
    if name in FACTS_MACS:
        assert abs(t["macs"] - FACTS_MACS[name]) / FACTS_MACS[name] < 0.005
