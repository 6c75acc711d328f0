"""Upsample (SegNet unpooling, nearest) and RNN/LSTM beyond the per-layer sweeps: ONNX Runtime
parity on every sweep case of these types, unpooling with random masks against Caffe's loop
written out literally, indices outside the plane, the distinct-index emission, other batch
sizes, and the located errors for forms Caffe refuses."""
import zlib

import numpy as np
import pytest

import caffe2mx
from caffe2mx.converter.errors import Caffe2MXError, ModelError
from caffe2mx.converter.layers import interp as interp_handlers
from caffe2mx.verify.metrics import GOLDEN_RTOL, compare
from caffe2mx.verify.mxnet_run import run_blobs
from caffe2mx.verify.numpy_ref import forward

from conftest import assert_ownership
from sweeps import all_cases, layer, make_net

TYPES = ("Upsample", "RNN", "LSTM")
SWEEP = [c for c in all_cases() if any(f'type: "{t}"' in c.values[0] for t in TYPES)]


def _net(tmp_path, text):
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    return path


def _close(got, want, what):
    d = compare(got, want)
    assert d.shape_ok and d.nonfinite_ok and d.max_rel <= GOLDEN_RTOL, f"{what}: {d}"


# -- ONNX Runtime on the sweep cases --------------------------------------------------------------

@pytest.mark.parametrize("text,kw", SWEEP)
def test_sweep_case_in_onnxruntime(tmp_path, request, text, kw):
    """ORT equals the float64 NumPy reference on every blob (test_layers_sweep holds MXNet to
    the same reference); the Upsample nets, whose first axis is the batch, also at another
    batch size through the dynamic-batch model. Seeded weights."""
    pytest.importorskip("onnxruntime")
    from caffe2mx.converter.onnx_export import conversion_to_onnx, run_onnx_blobs
    case_id = request.node.callspec.id
    conv = caffe2mx.convert(str(_net(tmp_path, text)), seed=zlib.crc32(case_id.encode()))
    assert_ownership(conv)
    model = conversion_to_onnx(conv)
    rng = np.random.default_rng(zlib.crc32(case_id.encode()) + 1)
    for batch in ([None, 3] if 'type: "Upsample"' in text else [None]):
        inputs = {}
        for name, shape in conv.name_map["input_shapes"].items():
            shape = tuple(shape) if batch is None else (batch,) + tuple(shape[1:])
            inputs[name] = rng.standard_normal(shape).astype(np.float32)
        ref = forward(conv.net.graph, inputs).blobs
        got = run_onnx_blobs(model, inputs)
        compared = 0
        for blob, value in got.items():
            if blob not in inputs and blob in ref:
                _close(value, ref[blob], f"{blob} (batch {batch or 'as declared'})")
                compared += 1
        assert compared and set(conv.name_map["outputs"]) <= set(got)


# -- unpooling: random masks, ties, indices outside the plane ------------------------------------

def caffe_unpool_loop(x, mask, out_h, out_w, skip_invalid=False):
    """SegNet's Forward_cpu written out literally (plane by plane, input order; later writes
    win), independent of both implementations under test."""
    n, c, h, w = x.shape
    top = np.zeros((n, c, out_h * out_w), np.float64)
    for i in range(n):
        for j in range(c):
            for k in range(h * w):
                idx = int(mask[i, j].flat[k])
                if not 0 <= idx < out_h * out_w:
                    assert skip_invalid
                    continue
                top[i, j, idx] = x[i, j].flat[k]
    return top.reshape(n, c, out_h, out_w)


UNPOOL_NET = make_net(layer("up", "Upsample", bottoms=("data", "mask"), param="upsample_param { scale: 2 }"),
                      [("data", (2, 3, 4, 5)), ("mask", (2, 3, 4, 5))])


@pytest.fixture(scope="module")
def unpool(tmp_path_factory):
    conv = caffe2mx.convert(str(_net(tmp_path_factory.mktemp("unpool"), UNPOOL_NET)))
    assert_ownership(conv)
    return conv


def _run_all(conv, inputs):
    mx_out = run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, inputs, blobs=["up"])["up"]
    onnx_out = None
    try:
        from caffe2mx.converter.onnx_export import conversion_to_onnx, run_onnx_blobs
        onnx_out = run_onnx_blobs(conversion_to_onnx(conv), inputs, blobs=[])["up"]
    except ImportError:  # pragma: no cover - onnxruntime is a core dependency
        pass
    return mx_out, onnx_out


@pytest.mark.parametrize("spread", [3, 12, 80])  # few distinct indices (many ties) .. nearly distinct
@pytest.mark.parametrize("batch", [2, 5])
def test_random_masks_with_ties_follow_caffes_loop(unpool, spread, batch):
    rng = np.random.default_rng(spread * 10 + batch)
    x = rng.standard_normal((batch, 3, 4, 5)).astype(np.float32)
    mask = rng.integers(0, spread, x.shape).astype(np.float32)
    want = caffe_unpool_loop(x, mask, 8, 10)
    ref = forward(unpool.net.graph, {"data": x, "mask": mask}).blobs["up"]
    assert np.array_equal(ref, want)
    mx_out, onnx_out = _run_all(unpool, {"data": x, "mask": mask})
    assert np.array_equal(mx_out, want)
    if onnx_out is not None:
        assert np.array_equal(onnx_out, want)


def test_indices_outside_the_plane_write_nothing_and_the_reference_refuses_them(unpool):
    """Caffe aborts on an index past the plane (and a negative one writes outside the blob):
    the reference says so, naming the layer; the converted model drops those writes."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    mask = rng.integers(0, 80, x.shape).astype(np.float32)
    mask[0, 0, 0, :3] = [80, -1, 1e9]
    mask[1, 2, 3, 4] = -0.5  # truncates to 0: inside
    with pytest.raises(ModelError, match="'up'.*outside the 8x10 output plane"):
        forward(unpool.net.graph, {"data": x, "mask": mask})
    want = caffe_unpool_loop(x, mask, 8, 10, skip_invalid=True)
    mx_out, onnx_out = _run_all(unpool, {"data": x, "mask": mask})
    assert np.array_equal(mx_out, want)
    if onnx_out is not None:
        assert np.array_equal(onnx_out, want)


def test_distinct_index_emission(tmp_path, monkeypatch):
    """The emission used for masks straight from non-overlapping MAX pooling (no sort): given
    distinct in-plane indices it equals the reference, in MXNet and ONNX Runtime."""
    monkeypatch.setattr(interp_handlers, "_mask_is_distinct", lambda em, node: True)
    conv = caffe2mx.convert(str(_net(tmp_path, UNPOOL_NET)))
    ops = {n["op"] for n in __import__("json").loads(conv.symbol.tojson())["nodes"]}
    assert "sort" not in ops and "_contrib_index_copy" in ops
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    mask = np.stack([rng.permutation(80)[:20] for _ in range(6)]).reshape(x.shape).astype(np.float32)
    want = caffe_unpool_loop(x, mask, 8, 10)
    mx_out, onnx_out = _run_all(conv, {"data": x, "mask": mask})
    assert np.array_equal(mx_out, want)
    if onnx_out is not None:
        assert np.array_equal(onnx_out, want)


POOLINGS = {
    # id: (pooling_param text, pooling input shape, pooled shape, upsample output (h, w), distinct?)
    "k2s2": ("pool: MAX kernel_size: 2 stride: 2", (1, 2, 6, 8), (1, 2, 3, 4), (6, 8), True),
    "k3s2-overlap": ("pool: MAX kernel_size: 3 stride: 2", (1, 2, 7, 9), (1, 2, 3, 4), (7, 9), False),
    "global": ("pool: MAX global_pooling: true", (1, 2, 4, 5), (1, 2, 1, 1), (4, 5), True),
    "ave": ("pool: AVE kernel_size: 2 stride: 2", (1, 2, 6, 8), (1, 2, 3, 4), (6, 8), False),
    "input-larger-than-output": ("pool: MAX kernel_size: 2 stride: 2", (1, 2, 7, 9), (1, 2, 4, 5), (6, 8), False),
    "empty-window": ("pool: MAX kernel_size: 1 stride: 3", (1, 2, 5, 5), (1, 2, 3, 3), (6, 6), False),
}


@pytest.mark.parametrize("pool,x,pooled,out,distinct", POOLINGS.values(), ids=list(POOLINGS))
def test_which_masks_skip_the_tie_sort(pool, x, pooled, out, distinct):
    """Only the second top of a MAX Pooling whose windows neither overlap nor fall outside the
    map, and whose input plane fits the output plane, is trusted to hold distinct indices."""
    from types import SimpleNamespace
    from google.protobuf import text_format
    from caffe2mx.converter.proto import caffe_pb
    param = text_format.Parse(f"pooling_param {{ {pool} }}", caffe_pb.LayerParameter())
    pooling = SimpleNamespace(type="Pooling", bottoms=("data",), tops=("pool", "mask"), param=param)
    up = SimpleNamespace(bottoms=("feat", "mask"))
    em = SimpleNamespace(graph=SimpleNamespace(nodes=(pooling, up)), shapes={"data": x, "pool": pooled},
                         out_shapes=lambda node: [pooled[:2] + out])
    assert interp_handlers._mask_is_distinct(em, up) is distinct
    input_mask = SimpleNamespace(type="Input", bottoms=(), tops=("mask",), param=param)
    em.graph = SimpleNamespace(nodes=(input_mask, up))
    assert interp_handlers._mask_is_distinct(em, up) is False


# -- the located errors --------------------------------------------------------------------------

BAD = {
    "nearest-with-segnet-field": (layer("up", "Upsample", param="upsample_param { scale: 2 scale_h: 2 }"),
                                  [("data", (1, 2, 3, 3))], "belong to SegNet's unpooling"),
    "scale-h-without-w": (layer("up", "Upsample", bottoms=("data", "m"), param="upsample_param { scale_h: 2 }"),
                          [("data", (1, 2, 3, 3)), ("m", (1, 2, 3, 3))], "scale_h and scale_w together"),
    "pad-out-scale-3": (layer("up", "Upsample", bottoms=("data", "m"),
                              param="upsample_param { scale: 3 pad_out_w: true }"),
                        [("data", (1, 2, 3, 3)), ("m", (1, 2, 3, 3))], "pad_out_w needs scale_w == 2"),
    "scale-1-unpool": (layer("up", "Upsample", bottoms=("data", "m"), param="upsample_param { scale: 1 }"),
                       [("data", (1, 2, 3, 3)), ("m", (1, 2, 3, 3))], "scale must be > 1"),
    "mask-shape": (layer("up", "Upsample", bottoms=("data", "m")),
                   [("data", (1, 2, 3, 3)), ("m", (1, 2, 3, 4))], "must have the data's shape"),
    "cont-shape": (layer("r", "LSTM", bottoms=("x", "c"), param="recurrent_param { num_output: 3 }"),
                   [("x", (3, 2, 4)), ("c", (3, 2, 1))], "cont must be T x N"),
    "no-num-output": (layer("r", "RNN", bottoms=("x", "c")), [("x", (3, 2, 4)), ("c", (3, 2))],
                      "num_output must be positive"),
    "expose-tops": (layer("r", "LSTM", bottoms=("x", "c", "h0", "c0"),
                          param="recurrent_param { num_output: 3 expose_hidden: true }"),
                    [("x", (3, 2, 4)), ("c", (3, 2)), ("h0", (1, 2, 3)), ("c0", (1, 2, 3))], "produces 3 top"),
    "state-shape": (layer("r", "RNN", bottoms=("x", "c", "h0"), tops=("r", "hT"),
                          param="recurrent_param { num_output: 3 expose_hidden: true }"),
                    [("x", (3, 2, 4)), ("c", (3, 2)), ("h0", (1, 2, 4))], "1 x N x num_output"),
    "static-batch": (layer("r", "RNN", bottoms=("x", "c", "s"), param="recurrent_param { num_output: 3 }"),
                     [("x", (3, 2, 4)), ("c", (3, 2)), ("s", (3, 5))], "x_static must be N x"),
}


@pytest.mark.parametrize("text,inputs,message", BAD.values(), ids=list(BAD))
def test_refused_forms_name_the_layer_and_line(tmp_path, text, inputs, message):
    path = _net(tmp_path, make_net(text, inputs))
    with pytest.raises(Caffe2MXError) as info:
        caffe2mx.read_net(str(path))
    assert message in str(info.value)
    assert f"{path}:" in str(info.value) and ("'up'" in str(info.value) or "'r'" in str(info.value))


# -- recurrent nets at another N (the reshapes keep the stream count free) -----------------------

@pytest.mark.parametrize("type_", ["RNN", "LSTM"])
def test_recurrent_conversion_runs_at_another_stream_count(tmp_path, type_):
    states = ("h0",) if type_ == "RNN" else ("h0", "c0")
    text = make_net(layer("r", type_, bottoms=("x", "c", "s") + states, tops=("y",) + tuple(f"{s}T" for s in states),
                          param="recurrent_param { num_output: 4 expose_hidden: true }"),
                    [("x", (3, 2, 5)), ("c", (3, 2)), ("s", (2, 3))] + [(s, (1, 2, 4)) for s in states])
    conv = caffe2mx.convert(str(_net(tmp_path, text)))
    rng = np.random.default_rng(11)
    n = 5
    inputs = {"x": rng.standard_normal((3, n, 5)), "c": rng.integers(0, 2, (3, n)), "s": rng.standard_normal((n, 3))}
    inputs.update({s: rng.standard_normal((1, n, 4)) for s in states})
    inputs = {k: np.asarray(v, np.float32) for k, v in inputs.items()}
    ref = forward(conv.net.graph, inputs).blobs
    got = run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, inputs)
    for blob in ("y",) + tuple(f"{s}T" for s in states):
        assert got[blob].shape[1] == n
        _close(got[blob], ref[blob], blob)


# -- an LRCN-shaped net through verify and ONNX export -------------------------------------------

LRCN_LIKE = make_net(
    layer("lstm1", "LSTM", bottoms=("words", "cont"), param="recurrent_param { num_output: 6 }")
    + layer("lstm2", "LSTM", bottoms=("lstm1", "cont", "image"), param="recurrent_param { num_output: 5 }")
    + layer("predict", "InnerProduct", bottoms=("lstm2",), param="inner_product_param { axis: 2 num_output: 7 }")
    + layer("probs", "Softmax", bottoms=("predict",), param="softmax_param { axis: 2 }"),
    [("cont", (4, 3)), ("words", (4, 3, 8)), ("image", (3, 10))], style="input_shape")


def test_lrcn_shaped_net_verifies_and_exports(tmp_path):
    """The corpus LRCN net's structure (two LSTMs sharing cont, a static input, axis-2
    InnerProduct and Softmax) at small sizes, with restarts mid-sequence: `verify` passes
    against the NumPy reference and ONNX Runtime equals MXNet on the output."""
    path = _net(tmp_path, LRCN_LIKE)
    rng = np.random.default_rng(5)
    inputs = {"cont": np.array([[0, 0, 0], [1, 0, 1], [1, 1, 0], [0, 1, 1]], np.float32),
              "words": rng.standard_normal((4, 3, 8)).astype(np.float32),
              "image": rng.standard_normal((3, 10)).astype(np.float32)}
    np.savez(tmp_path / "in.npz", **inputs)
    run = caffe2mx.verify(str(path), input=str(tmp_path / "in.npz"))
    assert run.outcome.passed, run.outcome
    pytest.importorskip("onnxruntime")
    from caffe2mx.converter.onnx_export import run_onnx_blobs
    conv = caffe2mx.convert(str(path))
    got = run_onnx_blobs(caffe2mx.export_onnx(conv, output=tmp_path / "net.onnx"), inputs, blobs=[])["probs"]
    want = run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, inputs, blobs=["probs"])["probs"]
    assert compare(got, want).max_abs <= 1e-6
    _close(got, forward(conv.net.graph, inputs).blobs["probs"], "probs vs NumPy")


OPSET_NET = make_net(
    layer("up", "Upsample", bottoms=("data", "mask"), param="upsample_param { scale: 2 }")
    + layer("near", "Upsample", bottoms=("up",), param="upsample_param { scale: 2 }")
    + layer("r", "LSTM", bottoms=("x", "c", "h0", "c0"), tops=("h", "hT", "cT"),
            param="recurrent_param { num_output: 3 expose_hidden: true }"),
    [("data", (2, 3, 2, 3)), ("mask", (2, 3, 2, 3)), ("x", (3, 2, 4)), ("c", (3, 2)), ("h0", (1, 2, 3)),
     ("c0", (1, 2, 3))])


@pytest.mark.parametrize("opset", [13, 21])
def test_every_supported_opset(tmp_path, opset):
    """The translations hold at both ends of the exporter's opset range (Resize, TopK,
    ScatterND, Unsqueeze and Clip changed signatures within it)."""
    pytest.importorskip("onnxruntime")
    from caffe2mx.converter.onnx_export import conversion_to_onnx, run_onnx_blobs
    conv = caffe2mx.convert(str(_net(tmp_path, OPSET_NET)))
    rng = np.random.default_rng(opset)
    inputs = {k: rng.standard_normal(s).astype(np.float32) for k, s in conv.name_map["input_shapes"].items()}
    inputs["mask"] = rng.integers(0, 6, (2, 3, 2, 3)).astype(np.float32)  # 6 of 24 slots: ties
    inputs["c"] = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    ref = forward(conv.net.graph, inputs).blobs
    got = run_onnx_blobs(conversion_to_onnx(conv, opset=opset), inputs, blobs=[])
    for blob in ("near", "h", "hT", "cT"):
        _close(got[blob], ref[blob], blob)
