"""Golden tests, one small net per layer type and parameter variant.

The cases live in tests/sweeps/<family>.py. Each case: a prototxt, seeded random input and blobs written as a real
caffemodel, converted by caffe2mx, run in MXNet (float32) and compared with the
independent NumPy reference (float64) at GOLDEN_RTOL. MXNet's own shape inference
must agree with the converter's Caffe shapes and with the reference's.
"""
import zlib

import numpy as np
import pytest

import caffe2mx
from caffe2mx.converter.caffemodel import read_caffemodel
from caffe2mx.converter.graph import build_graph
from caffe2mx.converter.layers import handler_for
from caffe2mx.converter.proto import caffe_pb
from caffe2mx.converter.prototxt import read_prototxt
from caffe2mx.converter.shapes import infer_shapes
from caffe2mx.verify.metrics import GOLDEN_RTOL, compare
from caffe2mx.verify.mxnet_run import run_blobs
from caffe2mx.verify.numpy_ref import forward
from conftest import assert_ownership, write_test_caffemodel
from sweeps import all_cases, layer, make_net


def _weights_for(path, rng, opts):
    graph = build_graph(read_prototxt(path))
    shapes = infer_shapes(graph)
    weights = {}
    for node in graph.nodes:
        need = handler_for(node.type).blob_shapes(node, [shapes[b] for b in node.bottoms])
        if need:
            weights[node.name] = handler_for(node.type).sample_blobs(node, need, rng, opts)
    return graph, weights


def write_v1_weights(path, weights, types):
    """A legacy caffemodel: NetParameter.layers with V1 blobs carrying num/channels/height/width."""
    net = caffe_pb.NetParameter(name="sweep")
    for name, blobs in weights.items():
        v1 = net.layers.add()
        v1.name = name
        v1.type = caffe_pb.V1LayerParameter.LayerType.Value(types[name])
        for arr in blobs:
            b = v1.blobs.add()
            dims = (1,) * (4 - arr.ndim) + tuple(arr.shape)
            b.num, b.channels, b.height, b.width = dims
            b.data.extend(arr.ravel().tolist())
    path.write_bytes(net.SerializeToString())


def prepare_case(tmp_path, case_id, text, opts=None, v1_types=None, v2_types=None):
    """(prototxt path, caffemodel path or None, inputs) of a case: seeded blobs and inputs."""
    opts = opts or {}
    rng = np.random.default_rng(zlib.crc32(case_id.encode()))
    proto = tmp_path / "net.prototxt"
    proto.write_text(text)
    graph, weights = _weights_for(proto, rng, opts)
    model = None
    if weights:
        model = tmp_path / "net.caffemodel"
        if v1_types:
            write_v1_weights(model, weights, v1_types)
        else:
            write_test_caffemodel(model, weights, v2_types, None if v2_types else text, "sweep")
    inputs = {graph.caffe_blob(b): rng.standard_normal(s).astype(np.float32) * opts.get("in_scale", 1.0)
              + opts.get("in_shift", 0.0) for b, s in graph.inputs.items()}
    if "in_quantum" in opts:  # a coarse grid of values, so that ties (equal maxima, x == threshold) occur
        inputs = {k: np.round(v / opts["in_quantum"]) * opts["in_quantum"] for k, v in inputs.items()}
    for name, (lo, hi) in opts.get("in_ints", {}).items():  # index inputs (Embed): integers in [lo, hi)
        inputs[name] = rng.integers(lo, hi, graph.inputs[name]).astype(np.float32)
    inputs = {k: np.asarray(v, np.float32) for k, v in inputs.items()}
    return proto, model, inputs


def check_net(tmp_path, case_id, text, *, opts=None, bn_blob3="inv_std", v1_types=None, v2_types=None):
    """Convert, run and compare every blob of the net; return the Conversion."""
    proto, model, inputs = prepare_case(tmp_path, case_id, text, opts, v1_types, v2_types)
    conv = caffe2mx.convert(str(proto), str(model) if model else None, bn_blob3=bn_blob3)
    ref = forward(build_graph(read_prototxt(proto)), inputs,
                  weights=read_caffemodel(model) if model else {}, bn_blob3=bn_blob3)
    got = run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, inputs)
    internals = conv.symbol.get_internals()
    in_shapes = {conv.name_map["inputs"][k]: v.shape for k, v in inputs.items()}
    cgraph = conv.net.graph
    silenced = _only_silenced(cgraph)
    checked = 0
    for blob in cgraph.final_version:
        mx_name = conv.name_map["blobs"].get(blob)
        if mx_name is None or cgraph.final_version[blob] in cgraph.inputs:  # an input nothing wrote
            continue
        if cgraph.final_version[blob] in silenced:  # Caffe computes it; MXNet may prune it (nothing reads it)
            continue
        want = ref.blobs[blob]
        caffe_shape = tuple(conv.net.shapes[cgraph.final_version[blob]])
        sym = internals[mx_name]
        mx_shape = tuple(sym.infer_shape(**{k: v for k, v in in_shapes.items() if k in sym.list_arguments()})[1][0])
        assert mx_shape == caffe_shape == want.shape, (blob, mx_shape, caffe_shape, want.shape)
        d = compare(got[blob], want)
        assert d.nonfinite_ok and d.max_rel <= GOLDEN_RTOL, f"{case_id}: blob '{blob}' max_rel {d.max_rel:.3g}"
        checked += 1
    assert checked, "no blob compared"
    assert_ownership(conv)
    return conv


def _only_silenced(graph):
    """Blob ids whose only readers are Silence layers: no MXNet node needs them."""
    readers = graph.consumers()
    return {b for b, nodes in readers.items() if all(n.type == "Silence" for n in nodes)}


CASES = all_cases()


@pytest.mark.parametrize("text,kw", CASES)
def test_layer(tmp_path, request, text, kw):
    check_net(tmp_path, request.node.callspec.id, text, **kw)


# V1 (legacy) nets: `layers { type: CONVOLUTION }`, input_dim, and a V1-layout caffemodel
V1_NET = """name: "v1"
input: "data"
input_dim: 2
input_dim: 3
input_dim: 8
input_dim: 8
layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv"
         convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 } }
layers { name: "relu" type: RELU bottom: "conv" top: "conv" }
layers { name: "pool" type: POOLING bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layers { name: "fc" type: INNER_PRODUCT bottom: "pool" top: "fc" inner_product_param { num_output: 5 } }
layers { name: "prob" type: SOFTMAX bottom: "fc" top: "prob" }
"""


@pytest.mark.parametrize("legacy_model", [True, False], ids=["v1-caffemodel", "v2-caffemodel"])
def test_v1_net(tmp_path, legacy_model):
    if legacy_model:
        check_net(tmp_path, "v1", V1_NET, v1_types={"conv": "CONVOLUTION", "fc": "INNER_PRODUCT"})
    else:
        # the same weights written as new-style layers: names and types must match the upgraded net
        check_net(tmp_path, "v1-v2model", V1_NET, v2_types={"conv": "Convolution", "fc": "InnerProduct"})


def test_bn_large_inv_std_is_folded_exactly_and_reported(tmp_path):
    """Inverse stds above 1/sqrt(eps) ~ 316 have no MXNet variance: the converter folds them
    into gamma (still exact) and says so in the name map's adjustments."""
    text = make_net(layer("bn", "BN", tops=("data",), param="bn_param { frozen: true }"), (("data", (2, 16, 3, 3)),))
    conv = check_net(tmp_path, "BN-fold-report", text, opts={"inv_std": (400.0, 1000.0), "in_scale": 1e-3})
    assert any(a["layer"] == "bn" and "16 channel" in a["message"] for a in conv.name_map["adjustments"])
