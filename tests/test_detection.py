"""Detection layers beyond the per-layer sweeps: planted inputs with hand-computed outputs,
verify's row-pairing comparison, the ONNX translations (box_nms alone against MXNet's kernel on
random and planted boxes; the layers in ONNX Runtime against MXNet and the hand-worked rows),
the `Python` layer's recognition, and the two detection nets of the shared corpus.

Expected values in the planted tests are worked out by hand in the comments from the Caffe
sources (weiliu89/caffe `ssd` bbox_util.cpp, py-faster-rcnn lib/rpn), not read from either
implementation.
"""
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from caffe2mx import api
from caffe2mx.converter.errors import ModelError, ModelErrors
from caffe2mx.converter.graph import build_graph
from caffe2mx.converter.layers.rcnn import parse_param_str
from caffe2mx.converter.layers.ssd import DETECTION_LAYOUT
from caffe2mx.converter.prototxt import parse_prototxt_text
from caffe2mx.converter.shapes import check_supported
from caffe2mx.verify.detections import compare_detections
from caffe2mx.verify.metrics import compare
from caffe2mx.verify.mxnet_run import run_blobs
from caffe2mx.verify.numpy_ref import forward

from conftest import CORPUS, need_shared, write_test_caffemodel
from sweeps import all_cases, layer, make_net


def _run(tmp_path, text, inputs, weights=None):
    """(MXNet blobs, NumPy reference blobs, Conversion) of a net on given inputs."""
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    model = None
    if weights:
        model = write_test_caffemodel(tmp_path / "net.caffemodel", weights, text=text)
    conv = api.convert(str(path), str(model) if model else None)
    got = run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, inputs)
    from caffe2mx.converter.caffemodel import read_caffemodel
    ref = forward(build_graph(parse_prototxt_text(text, str(path))), inputs,
                  weights=read_caffemodel(str(model)) if model else {})
    return got, ref.blobs, conv


# -- DetectionOutput on planted priors and scores --------------------------------------------------

PRIORS = np.array([[0.1, 0.1, 0.4, 0.4],    # p0
                   [0.12, 0.1, 0.42, 0.4],  # p1: IoU with p0 = 0.084 / (0.18 - 0.084) = 0.875
                   [0.6, 0.6, 0.9, 0.8],    # p2
                   [0.5, 0.1, 0.7, 0.3]])   # p3
#: class probabilities per prior (class 0 is the background)
CONF = np.array([[0.05, 0.9, 0.05],
                 [0.0, 0.6, 0.4],   # class 1 suppressed by p0 (0.875 > 0.45), class 2 kept
                 [0.29, 0.37, 0.34],
                 [0.8, 0.1, 0.1]])  # nothing above 0.3
# p2's offsets: dx = 1 moves the centre by 0.1 * 1 * 0.3 (variance x width); dw = ln 2 / 0.2 doubles the width
LOC = np.zeros((4, 4))
LOC[2] = [1.0, 0.0, math.log(2) / 0.2, 0.0]
P2 = [0.75 + 0.03 - 0.3, 0.6, 0.75 + 0.03 + 0.3, 0.8]  # centre 0.78, width 0.6: decoded p2


#: the same priors with a tie: p0 and p1 both score 0.6 in class 1 (p1 is suppressed: Caffe's stable
#: sort puts p0 first), class 2 unchanged (0.4 p1, 0.34 p2), p0 nothing in class 2
CONF_TIE = np.array([[0.4, 0.6, 0.0],
                     [0.0, 0.6, 0.4],
                     [0.29, 0.37, 0.34],
                     [0.8, 0.1, 0.1]])
KEPT = [[1, 0.9] + PRIORS[0].tolist(), [1, 0.37] + P2, [2, 0.4] + PRIORS[1].tolist(), [2, 0.34] + P2]
KEPT_TIE = [[1, 0.6] + PRIORS[0].tolist(), [1, 0.37] + P2, [2, 0.4] + PRIORS[1].tolist(), [2, 0.34] + P2]


def _detection_text(param, batch=1):
    return make_net(layer("det", "DetectionOutput", bottoms=("loc", "conf", "prior"),
                          param="detection_output_param { num_classes: 3 share_location: true background_label_id: 0 "
                                f"code_type: CENTER_SIZE nms_param {{ nms_threshold: 0.45 top_k: 3 }} {param} }}"),
                    (("loc", (batch, 16)), ("conf", (batch, 12)), ("prior", (1, 2, 16))))


def _planted_inputs(confs=(CONF,)):
    prior = np.stack([PRIORS.reshape(-1), np.tile([0.1, 0.1, 0.2, 0.2], 4)])[None]
    return {"loc": np.tile(LOC.reshape(1, -1), (len(confs), 1)).astype(np.float32),
            "conf": np.stack([c.reshape(-1) for c in confs]).astype(np.float32), "prior": prior.astype(np.float32)}


@pytest.mark.parametrize("param,confs,expected", [
    # every kept box: label 1 (0.9 p0, 0.37 p2), label 2 (0.4 p1, 0.34 p2); 6 rows (2 classes x top_k 3), 2 of padding
    ("keep_top_k: 10 confidence_threshold: 0.3", [CONF], [KEPT]),
    # keep_top_k 3 drops the lowest score (0.34), then Caffe orders by label
    ("keep_top_k: 3 confidence_threshold: 0.3", [CONF], [KEPT[:3]]),
    # nothing above the threshold: Caffe's single row [image, -1 x 6]
    ("keep_top_k: 4 confidence_threshold: 0.95", [CONF], [[]]),
    # a tie in class 1 between overlapping p0 and p1: the first prior is kept
    ("keep_top_k: 10 confidence_threshold: 0.3", [CONF_TIE], [KEPT_TIE]),
    # two images: each its own block of rows, image index in column 0
    ("keep_top_k: 10 confidence_threshold: 0.3", [CONF, CONF_TIE], [KEPT, KEPT_TIE]),
    ("keep_top_k: 2 confidence_threshold: 0.3", [CONF_TIE, CONF], [KEPT_TIE[:1] + KEPT_TIE[2:3], KEPT[:1] + KEPT[2:3]]),
], ids=["fewer-than-keep", "keep-top-k", "none", "tie", "batch2", "batch2-keep2"])
def test_detection_output_on_planted_boxes(tmp_path, param, confs, expected):
    """MXNet, the NumPy reference and ONNX Runtime (the exported model) all give the hand-worked rows."""
    pytest.importorskip("onnxruntime")
    from caffe2mx.converter.onnx_export import OnnxRunner
    inputs = _planted_inputs(confs)
    got, ref, conv = _run(tmp_path, _detection_text(param, len(confs)), inputs)
    onnx = OnnxRunner(api.export_onnx(conv)).run(inputs)
    # the fixed row count: keep_top_k, at most 2 classes x top_k 3 candidates
    rows = min(int(param.split("keep_top_k: ")[1].split()[0]), 2 * 3)
    want = np.full((len(confs), rows, 7), -1.0)
    for image, kept in enumerate(expected):
        want[image, :, 0] = image
        if kept:
            want[image, :len(kept), 1:] = kept
    want = want.reshape(-1, 7)
    for name, value, atol in (("MXNet", got["det"], 1e-6), ("NumPy", ref["det"], 1e-12),
                              ("ONNX Runtime", onnx["det"], 1e-6)):
        assert value.shape == (1, 1, len(want), 7), name
        np.testing.assert_allclose(value.reshape(-1, 7), want, atol=atol, err_msg=name)
    if not expected[0]:  # row 0 is exactly Caffe's "no detection" row
        assert got["det"].reshape(rows, 7)[0].tolist() == [0, -1, -1, -1, -1, -1, -1]
        assert onnx["det"].reshape(rows, 7)[0].tolist() == [0, -1, -1, -1, -1, -1, -1]


def test_verify_against_onnxruntime_pairs_detection_rows(tmp_path):
    """`verify --reference onnxruntime` judges DetectionOutput by verify's detection rule (rows
    paired by content), as it judges it against the NumPy reference."""
    pytest.importorskip("onnxruntime")
    from caffe2mx.verify.detections import DetectionDiff
    path = tmp_path / "net.prototxt"
    path.write_text(_detection_text("keep_top_k: 10 confidence_threshold: 0.3", 2))
    run = api.verify(str(path), input=_planted_inputs((CONF, CONF_TIE)), reference="onnxruntime")
    assert run.outcome.passed, run.outcome.first
    d = run.outcome.row("det").diff
    assert isinstance(d, DetectionDiff) and d.paired == d.reference_rows == 8 and d.unexplained == 0, d.summary()


# -- the proposal layer on planted scores and deltas -----------------------------------------------

def _proposal_inputs():
    """A 3x3 map, stride 16, scales [2]: anchors (ratio 0.5, 1, 2) are [-15,-4,30,19], [-8,-8,23,23],
    [-3,-14,18,29] at cell (0, 0) (generate_anchors with NumPy's round: 11.5 -> 12)."""
    a, h, w = 3, 3, 3
    scores = np.full((1, 2 * a, h, w), 0.1, np.float32)
    deltas = np.zeros((1, 4 * a, h, w), np.float32)
    deltas[0, 2::4] = deltas[0, 3::4] = -5.0  # every unplanted box ~0.2 px wide: under the 16 px min size
    plant = {  # (anchor, cell) -> (score, dx)
        (1, 1, 1): (0.9, 0.0),   # A: [8, 8, 40, 40]  (width 32 around centre 24: x2 = 24 + 16, not 39)
        (1, 0, 0): (0.8, 0.0),   # B: [-8, -8, 24, 24] clipped to [0, 0, 24, 24]; IoU with A 289/1425
        (1, 1, 2): (0.7, -0.4),  # C: [11.2, 8, 43.2, 40]; IoU with A 983.4/1194.6 = 0.82 > 0.7: suppressed
        (0, 2, 2): (0.6, 0.0),   # D: [17, 28, 63, 52] clipped to [17, 28, 47, 47]
    }
    for (k, i, j), (s, dx) in plant.items():
        scores[0, a + k, i, j] = s
        deltas[0, 4 * k:4 * k + 4, i, j] = [dx, 0, 0, 0]
    scores[0, a + 2, 0, 2] = 0.95  # E: the best score, but 22 * e^-3 = 1.1 px wide: filtered out
    deltas[0, 8:12, 0, 2] = [0, 0, -3, -3]
    return {"scores": scores, "deltas": deltas, "im_info": np.array([[48, 48, 1.0]], np.float32)}


def _proposal_text():
    return make_net(layer("proposal", "Python", bottoms=("scores", "deltas", "im_info"), tops=("rois", "s"),
                          param="python_param { module: 'rpn.proposal_layer' layer: 'ProposalLayer' "
                                "param_str: \"'feat_stride': 16\\n'scales': [2]\" }"),
                    (("scores", (1, 6, 3, 3)), ("deltas", (1, 12, 3, 3)), ("im_info", (1, 3))))


def test_proposals_on_planted_anchors(tmp_path):
    text = _proposal_text()
    pytest.importorskip("onnxruntime")
    from caffe2mx.converter.onnx_export import OnnxRunner
    got, ref, conv = _run(tmp_path, text, _proposal_inputs())
    onnx = OnnxRunner(api.export_onnx(conv)).run(_proposal_inputs())
    kept = np.array([[0, 8, 8, 40, 40], [0, 0, 0, 24, 24], [0, 17, 28, 47, 47]], float)
    want = kept[np.arange(27) % 3]  # 27 anchors: the fixed rows repeat the three kept proposals
    np.testing.assert_allclose(got["rois"], want, atol=1e-4)
    np.testing.assert_allclose(ref["rois"], want, atol=1e-9)
    np.testing.assert_allclose(onnx["rois"], want, atol=1e-4)
    for scores in (got["s"], onnx["s"]):
        np.testing.assert_allclose(scores.ravel(), np.array([0.9, 0.8, 0.6])[np.arange(27) % 3], atol=1e-7)


def test_proposals_on_planted_ties_in_onnxruntime(tmp_path):
    """Two proposals tie at 0.9 and overlap (IoU 0.82 > 0.7): py-faster-rcnn's stable argsort keeps the
    first in (h, w, a) order, C at cell (1, 2) is after A at (1, 1); a third, D, ties them too and
    overlaps neither: kept, after A. In MXNet and in ONNX Runtime alike."""
    pytest.importorskip("onnxruntime")
    from caffe2mx.converter.onnx_export import OnnxRunner
    inputs = _proposal_inputs()
    inputs["scores"][0, 3 + 1, 1, 2] = inputs["scores"][0, 3 + 0, 2, 2] = 0.9  # C and D tie with A
    text = _proposal_text()
    got, ref, conv = _run(tmp_path, text, inputs)
    onnx = OnnxRunner(api.export_onnx(conv)).run(inputs)
    kept = np.array([[0, 8, 8, 40, 40], [0, 17, 28, 47, 47], [0, 0, 0, 24, 24]], float)
    want = kept[np.arange(27) % 3]
    for name, rois, atol in (("MXNet", got["rois"], 1e-4), ("NumPy", ref["rois"], 1e-9),
                             ("ONNX Runtime", onnx["rois"], 1e-4)):
        np.testing.assert_allclose(rois, want, atol=atol, err_msg=name)
    np.testing.assert_allclose(onnx["s"].ravel(), np.array([0.9, 0.9, 0.8])[np.arange(27) % 3], atol=1e-7)


# -- verify's comparison of detection lists --------------------------------------------------------

def _rows(*rows, pad=0):
    out = np.array([list(r) for r in rows] + [[0] + [-1] * 6] * pad, np.float64)
    return out.reshape(1, 1, -1, 7)


REF = _rows([0, 1, 0.9, 0.1, 0.1, 0.4, 0.4], [0, 1, 0.5, 0.5, 0.5, 0.7, 0.9], [0, 2, 0.5000001, 0.2, 0.2, 0.3, 0.3])
LAYOUT = dict(DETECTION_LAYOUT, threshold=0.3)


def test_detection_rows_pair_by_content_and_padding_is_dropped():
    swapped = _rows(*REF.reshape(-1, 7)[[0, 2, 1]], pad=4)  # near-tied scores in the other order, padded
    d, pairs = compare_detections(swapped, REF, LAYOUT)
    assert d.passed(1e-6) and d.paired == 3 and d.unexplained == 0
    assert not compare(swapped[:, :, :3], REF).passed(1e-6)  # element by element it would fail


def test_detection_rows_catch_a_moved_box_and_a_missing_row():
    moved = REF.copy()
    moved[0, 0, 1, 4] += 0.001
    assert not compare_detections(moved, REF, LAYOUT)[0].passed(1e-4)
    missing = _rows(*REF.reshape(-1, 7)[[1, 2]], pad=1)  # the 0.9 row is no near-tie: unexplained
    d, _ = compare_detections(missing, REF, LAYOUT)
    assert d.unexplained == 1 and not d.passed(1.0)
    # a row at the confidence threshold may be there on one side only
    at_threshold = _rows(*REF.reshape(-1, 7), [0, 2, 0.3000001, 0.6, 0.1, 0.8, 0.2])
    d, _ = compare_detections(at_threshold, REF, LAYOUT)
    assert d.passed(1e-6) and d.tolerated == 1


def test_a_dump_with_only_the_kept_rois_in_another_order_passes(tmp_path):
    """A Caffe dump has only the kept proposals (the converted layer repeats them), possibly with
    near-tied ones in another order: verify pairs the rois by content and feeds the dump's own
    rois, padded as the converted layer pads, to the layers after them; a wrong pooled row fails."""
    case = next(c for c in all_cases() if c.id == "Proposal-then-ROIPooling")
    rng = np.random.default_rng(3)
    text = case.values[0]
    graph = build_graph(parse_prototxt_text(text, "p.prototxt"))
    inputs = {k: rng.standard_normal(s).astype(np.float32) for k, s in graph.inputs.items()}
    _, ref, _ = _run(tmp_path, text, inputs)
    from caffe2mx.converter.layers.rcnn import ROIS_LAYOUT
    from caffe2mx.verify.detections import valid_rows
    n = len(valid_rows(ref["rois"], ROIS_LAYOUT))
    assert n >= 3
    order = np.r_[1, 0, 2:n]  # two proposals the other way round, as Caffe might order a near-tie
    dump = {name: np.asarray(v, np.float32) for name, v in ref.items()}
    dump["rois"], dump["pool"] = ref["rois"][:n][order], ref["pool"][:n][order]
    dump.update({f"__input__/{k}": v for k, v in inputs.items()})
    np.savez(tmp_path / "acts.npz", **dump)
    run = api.verify(str(tmp_path / "net.prototxt"), reference=str(tmp_path / "acts.npz"))
    assert run.outcome.passed, run.outcome.first
    dump["pool"] = dump["pool"].copy()
    dump["pool"][1] += 1.0
    np.savez(tmp_path / "bad.npz", **dump)
    bad = api.verify(str(tmp_path / "net.prototxt"), reference=str(tmp_path / "bad.npz"))
    assert not bad.outcome.passed and bad.outcome.first.blob == "pool"


# -- ONNX ------------------------------------------------------------------------------------------

ONNX_CASES = ["Normalize-across_false-shared_false", "Normalize-across_true-shared_true-eps0.5", "Permute-0231",
              "Permute-2", "ROIPooling-2x3-scale0.125", "ROIPooling-2-images", "PSROIPooling-od2-g3-scale0.25",
              "PSROIPooling-2-images"]


def _sweep_case(tmp_path, case_id):
    """(Conversion, inputs) of a sweep case with its sampled weights."""
    from test_layers_sweep import _weights_for
    case = next(c for c in all_cases() if c.id == case_id)
    text, opts = case.values[0], case.values[1].get("opts", {})
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    rng = np.random.default_rng(0)
    graph, weights = _weights_for(path, rng, opts)
    model = write_test_caffemodel(tmp_path / "net.caffemodel", weights, text=text) if weights else None
    inputs = {k: (rng.standard_normal(s) * opts.get("in_scale", 1.0) + opts.get("in_shift", 0.0)).astype(np.float32)
              for k, s in graph.inputs.items()}
    return api.convert(str(path), str(model) if model else None), inputs


@pytest.mark.parametrize("case_id", ONNX_CASES)
def test_onnx_runtime_matches_mxnet(tmp_path, case_id):
    pytest.importorskip("onnxruntime")
    from caffe2mx.converter.onnx_export import OnnxRunner
    conv, inputs = _sweep_case(tmp_path, case_id)
    got = OnnxRunner(api.export_onnx(conv)).run(inputs)
    want = run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, inputs)
    checked = [b for b in got if b in want and b not in inputs]
    assert checked
    for b in checked:
        d = compare(got[b], want[b])
        assert d.shape_ok and d.max_rel <= 1e-5, (b, d)


DETECTION_CASES = [c.id for c in all_cases() if c.id.startswith(("DetectionOutput-", "Proposal-"))]


def _onnx_vs_mxnet(conv, inputs, net):
    """{blob: diff} of ONNX Runtime against MXNet on every blob both have: a detection list
    (a handler's detection_layout) by verify's rule, rows paired by content (near-tied rows may
    swap), every other blob element-wise."""
    from caffe2mx.converter.onnx_export import OnnxRunner
    from caffe2mx.verify.detections import layouts
    got = OnnxRunner(api.export_onnx(conv)).run(inputs)
    want = run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, inputs)
    lists = {net.graph.caffe_blob(v): layout for v, layout in layouts(net.graph).items() if layout is not None}
    assert lists
    out = {}
    for b in got:
        if b in want and b not in inputs:
            out[b] = compare_detections(got[b], want[b], lists[b])[0] if b in lists else compare(got[b], want[b])
    return out


@pytest.mark.parametrize("case_id", DETECTION_CASES)
def test_onnx_runtime_matches_mxnet_on_detection_layers(tmp_path, case_id):
    """DetectionOutput (box_nms per class) and the proposal layer (box_nms after a top-N) in ONNX
    Runtime: the detection lists pair row for row with MXNet's, none unexplained or tolerated."""
    pytest.importorskip("onnxruntime")
    from caffe2mx.converter.pipeline import read_net
    conv, inputs = _sweep_case(tmp_path, case_id)
    diffs = _onnx_vs_mxnet(conv, inputs, read_net(str(tmp_path / "net.prototxt")))
    for b, d in diffs.items():
        if hasattr(d, "paired"):
            assert d.passed(1e-5) and d.unexplained == 0 and d.tolerated == 0, (b, d.summary())
            assert d.paired == d.reference_rows, (b, d.summary())
        else:
            assert d.shape_ok and d.max_rel <= 1e-5, (b, d)


# -- box_nms, the translator alone, against MXNet's kernel ----------------------------------------

FLT_MAX = float(np.finfo(np.float32).max)
#: the attribute sets the two emitters pass (ssd.py DetectionOutput.emit, rcnn.py Python.emit)
NMS_ATTRS = {
    "ssd": dict(overlap_thresh=0.45, valid_thresh=0.3, topk=-1, coord_start=2, score_index=1, id_index=0,
                background_id=-1, force_suppress=False, in_format="corner", out_format="corner"),
    "ssd-no-threshold": dict(overlap_thresh=0.45, valid_thresh=-FLT_MAX, topk=-1, coord_start=2, score_index=1,
                             id_index=0, background_id=-1, force_suppress=False, in_format="corner",
                             out_format="corner"),
    "proposal-top-n": dict(overlap_thresh=0.7, valid_thresh=-1e38, topk=10, coord_start=2, score_index=1,
                           id_index=-1, force_suppress=False, in_format="corner", out_format="corner"),
    "proposal": dict(overlap_thresh=0.7, valid_thresh=-1e38, topk=-1, coord_start=2, score_index=1, id_index=-1,
                     force_suppress=False, in_format="corner", out_format="corner"),
}
NMS_SHAPE = (2, 24)  # batch 2, 24 boxes a batch item
_nms_sessions = {}


def _box_nms_session(attrs, width):
    """ONNX Runtime on the export of box_nms alone, and the MXNet symbol it came from."""
    import mxnet as mx
    import onnxruntime as ort
    from caffe2mx.converter.onnx_export.exporter import check, symbol_to_onnx
    key = (tuple(sorted(attrs.items())), width)
    if key not in _nms_sessions:
        sym = mx.sym.identity(mx.sym.contrib.box_nms(mx.sym.var("x"), name="nms", **attrs), name="out")
        shape = [*NMS_SHAPE, width]
        name_map = {"inputs": {"x": "x"}, "input_shapes": {"x": shape}, "outputs": {"y": sym.list_outputs()[0]},
                    "blobs": {}, "layers": {}, "nodes": {}}
        model = symbol_to_onnx(sym, {}, {}, name_map, dynamic_batch=False)
        check(model)
        assert [n.op_type for n in model.graph.node].count("NonMaxSuppression") == 1
        _nms_sessions[key] = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return _nms_sessions[key]


def _nms_both(table, attrs):
    import mxnet as mx
    table = np.asarray(table, np.float32)
    want = mx.nd.contrib.box_nms(mx.nd.array(table), **attrs).asnumpy()
    got = _box_nms_session(attrs, table.shape[-1]).run(None, {"x": table})[0]
    return got, want


def _nms_table(ids, scores, boxes, extra=None):
    """(2, 24, 6|8) rows [id, score, x1, y1, x2, y2 (, extra)], each given as a (2, 24[, k]) array."""
    cols = [np.asarray(ids, np.float32)[..., None], np.asarray(scores, np.float32)[..., None],
            np.asarray(boxes, np.float32)]
    if extra is not None:
        cols.append(np.asarray(extra, np.float32))
    return np.concatenate(cols, axis=-1)


@st.composite
def _nms_inputs(draw):
    """Scores from a few values (ties; at, under and far under valid_thresh; NaN), ids -1..2 (-1 is
    the background box_nms drops), corners on a small integer grid (IoU exactly 0.45 or 0.7 happens:
    9/20, 7/10; widths and heights 0 and negative too)."""
    n = NMS_SHAPE[0] * NMS_SHAPE[1]
    scores = draw(st.lists(st.sampled_from([0.9, 0.6, 0.6, 0.45, 0.3, 0.2, -FLT_MAX, -1e38, float("nan")]),
                           min_size=n, max_size=n))
    ids = draw(st.lists(st.integers(-1, 2), min_size=n, max_size=n))
    corners = draw(st.lists(st.integers(0, 6), min_size=2 * n, max_size=2 * n))
    sizes = draw(st.lists(st.sampled_from([-1, 0, 1, 2, 3, 4, 10]), min_size=2 * n, max_size=2 * n))
    xy = np.array(corners, np.float32).reshape(*NMS_SHAPE, 2)
    boxes = np.concatenate([xy, xy + np.array(sizes, np.float32).reshape(*NMS_SHAPE, 2)], axis=-1)
    extra = np.arange(2 * n, dtype=np.float32).reshape(*NMS_SHAPE, 2)  # columns box_nms only copies
    return (np.array(ids).reshape(NMS_SHAPE), np.array(scores).reshape(NMS_SHAPE), boxes, extra)


@pytest.mark.parametrize("which", list(NMS_ATTRS))
@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=_nms_inputs())
def test_box_nms_translator_equals_mxnet_on_random_boxes(which, data):
    pytest.importorskip("onnxruntime")
    ids, scores, boxes, extra = data
    attrs = NMS_ATTRS[which]
    got, want = _nms_both(_nms_table(ids, scores, boxes, None if which.startswith("ssd") else extra), attrs)
    np.testing.assert_array_equal(got, want)


def _planted_nms_rows():
    """Batch item 0: A [0,0,20,1] and B [11,0,20,1] overlap by exactly 9/20 = 0.45 (kept: box_nms
    suppresses above the threshold); C (B shifted left by 1, IoU 10/20 with A) is suppressed by A;
    D and E tie at 0.6 in class 1, E over D (IoU 0.8): the first row wins; F has zero width, G is inverted (x2 < x1)
    over A: neither suppresses nor is suppressed; H scores exactly valid_thresh 0.3 (dropped).
    Batch item 1: [0,0,10,1] and [3,0,10,1] overlap by exactly 7/10 (both kept at 0.7), [2,0,10,1]
    (IoU 8/10) is suppressed."""
    rows = [[[0, 0.9, 0, 0, 20, 1], [0, 0.8, 11, 0, 20, 1], [0, 0.7, 10, 0, 20, 1], [1, 0.6, 30, 0, 40, 5],
             [1, 0.6, 30, 0, 40, 4], [0, 0.95, 5, 0, 5, 1], [0, 0.99, 18, 0, 2, 1], [0, 0.3, 40, 40, 50, 50]],
            [[0, 0.9, 0, 0, 10, 1], [0, 0.8, 3, 0, 10, 1], [0, 0.7, 2, 0, 10, 1]]]
    table = np.full((*NMS_SHAPE, 6), -5.0, np.float32)  # the other rows: score -5 (valid for the proposal)
    for i, r in enumerate(rows):
        table[i, :len(r)] = r
    return table


def test_box_nms_translator_on_planted_thresholds_ties_and_flat_boxes():
    """The expected rows are worked out by hand in _planted_nms_rows (kept rows by descending score,
    ties in row order, then -1 rows), for the SSD attributes (per class, valid_thresh 0.3) at both
    overlap thresholds, and the proposal ones (one class, top 10)."""
    pytest.importorskip("onnxruntime")
    table = _planted_nms_rows()
    ssd = dict(NMS_ATTRS["ssd"])
    got, want = _nms_both(table, ssd)
    kept0 = table[0, [6, 5, 0, 1, 3]]  # 0.99 G, 0.95 F, 0.9 A, 0.8 B, 0.6 D (not C: 0.5 > 0.45; not E; not H)
    np.testing.assert_array_equal(want[0, :5], kept0)
    np.testing.assert_array_equal(want[0, 5:], -1)
    ssd["overlap_thresh"] = 0.7
    got1, want1 = _nms_both(table, ssd)
    np.testing.assert_array_equal(want1[1, :2], table[1, [0, 1]])  # 0.7 exactly: kept; 0.8: suppressed
    np.testing.assert_array_equal(want1[1, 2:], -1)
    for g, w in ((got, want), (got1, want1)):
        np.testing.assert_array_equal(g, w)
    prop = dict(NMS_ATTRS["proposal-top-n"], topk=4)
    got, want = _nms_both(table, prop)  # one class: D and E (same box), the top 4 of each item only
    np.testing.assert_array_equal(want[0, :3], table[0, [6, 5, 0]])  # top 4: G F A B; B overlaps A by 0.45
    np.testing.assert_array_equal(want[0, 3], table[0, 1])
    np.testing.assert_array_equal(want[0, 4:], -1)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("change,why", [({"in_format": "center"}, "in_format=center"),
                                        ({"out_format": "center"}, "out_format=center"),
                                        ({"overlap_thresh": -0.1}, "overlap_thresh -0.1")])
def test_box_nms_attributes_without_a_translation_are_refused(change, why):
    import mxnet as mx
    from caffe2mx.converter.onnx_export.exporter import symbol_to_onnx
    sym = mx.sym.identity(mx.sym.contrib.box_nms(mx.sym.var("x"), name="nms", **dict(NMS_ATTRS["ssd"], **change)),
                          name="out")
    name_map = {"inputs": {"x": "x"}, "input_shapes": {"x": [1, 8, 6]}, "outputs": {"y": sym.list_outputs()[0]},
                "blobs": {}, "layers": {}, "nodes": {}}
    with pytest.raises(ModelError, match=r"cannot be exported to ONNX: box_nms " + re.escape(why)):
        symbol_to_onnx(sym, {}, {}, name_map, dynamic_batch=False)


# -- the Python layer ------------------------------------------------------------------------------

@pytest.mark.parametrize("text,want", [
    ("'feat_stride': 16", {"feat_stride": 16}),
    ("{'feat_stride': 16, 'scales': [8, 16, 32]}", {"feat_stride": 16, "scales": [8, 16, 32]}),
    ("'feat_stride': 16\n'scales': !!python/tuple [4, 8, 16, 32]", {"feat_stride": 16, "scales": [4, 8, 16, 32]}),
    ("feat_stride: 8.5", {"feat_stride": 8.5}),
])
def test_param_str_forms(text, want):
    assert parse_param_str(text) == want


@pytest.mark.parametrize("text", ["'feat_stride': !!python/object/apply:os.system ['true']", "feat_stride 16",
                                  "'feat_stride': sixteen"])
def test_param_str_that_is_not_numbers_is_refused(text):
    with pytest.raises(ValueError):
        parse_param_str(text)


PY_NET = """name: "py"
input: "scores" input_shape { dim: 1 dim: 18 dim: 4 dim: 4 }
input: "deltas" input_shape { dim: 1 dim: 36 dim: 4 dim: 4 }
input: "im_info" input_shape { dim: 1 dim: 3 }
layer { name: "proposal" type: "Python" bottom: "scores" bottom: "deltas" bottom: "im_info" top: "rois"
        python_param { module: 'rpn.proposal_layer' layer: 'ProposalLayer' param_str: "%s" } }
layer { name: "other" type: "Python" bottom: "rois" top: "x" python_param { module: "my.layers" layer: "Fancy" } }
layer { name: "odd" type: "OddLayer" bottom: "x" top: "y" }
"""


def test_only_the_proposal_module_is_converted_and_the_rest_is_listed_once():
    graph = build_graph(parse_prototxt_text(PY_NET % "'feat_stride': 16\\n'anchor_ratios': [1]", "py.prototxt"))
    with pytest.raises(ModelErrors) as info:
        check_supported(graph)
    msg = str(info.value)
    assert "py.prototxt:8: layer 'odd' (OddLayer): unsupported layer type" in msg
    assert "py.prototxt:7: layer 'other' (Python): unsupported Python layer (module 'my.layers', layer 'Fancy')" in msg
    assert "py.prototxt:5: layer 'proposal' (Python): python_param.param_str: param_str keys ['anchor_ratios']" in msg


# -- the corpus: SSD300 and Faster R-CNN (VGG16) ------------------------------------------------------

def _rescaled_heads(net, heads, seed=0):
    """Seeded weights ({layer: LayerBlobs}), with the output convolutions named in `heads`
    ({suffix: rms}) rescaled so their outputs have that RMS: unscaled seeded heads saturate the
    softmax (scores of exactly 1, all tied), which leaves nothing to compare. A convolution's
    output scales with its weight and bias together."""
    from caffe2mx.converter.caffemodel import LayerBlobs
    from caffe2mx.converter.pipeline import bind, convert_net
    from caffe2mx.seeding import seeded_weights
    weights = seeded_weights(net, seed=seed)
    conv = convert_net(bind(net, weights))
    x = {k: np.random.default_rng(seed).uniform(-1, 1, s).astype(np.float32) for k, s in net.graph.inputs.items()}
    names = [n.name for n in net.graph.nodes if any(n.name.endswith(h) for h in heads)]
    outs = run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, x,
                     blobs=[net.graph.node(n).tops[0] for n in names])
    for n in names:
        target = next(r for h, r in heads.items() if n.endswith(h))
        k = np.float32(target / np.sqrt(np.mean(outs[net.graph.node(n).tops[0]] ** 2)))
        w = weights[n]
        weights[n] = LayerBlobs(w.name, w.type, tuple(b * k for b in w.blobs), w.legacy)
    return weights


def _numpy_parity(net, weights, inputs):
    """verify (NumPy reference) on in-memory weights (no 500 MB caffemodel to write and read)."""
    from caffe2mx.converter.pipeline import bind
    loaded = bind(net, weights)
    return api.verify(loaded, input=inputs).outcome, loaded


def test_ssd300_converts_verifies_and_exports_to_onnx(tmp_path):
    """`verify` (the API) on the corpus SSD300 with a caffemodel, against the NumPy reference and
    against ONNX Runtime on the exported model: DetectionOutput's rows pair by content both times."""
    from caffe2mx.converter.pipeline import read_net
    path = need_shared(CORPUS / "ssd300_vgg.prototxt")
    net = read_net(path)
    weights = _rescaled_heads(net, {"_mbox_conf": 2.0, "_mbox_loc": 1.0})
    model = write_test_caffemodel(tmp_path / "ssd.caffemodel", {k: v.blobs for k, v in weights.items()},
                                  types={n.name: n.type for n in net.graph.nodes})
    run = api.verify(str(path), str(model))
    assert run.outcome.passed, [(r.layer, r.diff) for r in run.outcome.rows if not r.passed]
    d = run.outcome.row("detection_out").diff
    assert d.paired >= 0.9 * d.reference_rows and d.reference_rows == 200 and d.unexplained == 0, d.summary()
    assert d.distinct_scores > 150  # distinct scores: the pairing is not carried by ties
    onnx = api.verify(str(path), str(model), reference="onnxruntime")
    assert onnx.outcome.passed, [(r.layer, r.diff) for r in onnx.outcome.rows if not r.passed]
    d = onnx.outcome.row("detection_out").diff
    assert d.paired == d.reference_rows == 200 and d.unexplained == 0 and d.tolerated == 0, d.summary()


def test_faster_rcnn_converts_verifies_and_exports_to_onnx():
    """At 128x160 (conv5 8x10, 720 anchors, 300 proposals), with im_info for that image; against
    the NumPy reference, then ONNX Runtime on the exported model."""
    from caffe2mx.converter.pipeline import read_net
    path = need_shared(CORPUS / "faster_rcnn_vgg16.prototxt")
    net = read_net(path, {"data": (1, 3, 128, 160)})
    weights = _rescaled_heads(net, {"rpn_cls_score": 2.0, "rpn_bbox_pred": 0.3, "cls_score": 2.0,
                                    "bbox_pred": 1.0})
    inputs = {"data": np.random.default_rng(0).uniform(-1, 1, (1, 3, 128, 160)).astype(np.float32),
              "im_info": np.array([[128, 160, 1.0]], np.float32)}
    outcome, loaded = _numpy_parity(net, weights, inputs)
    assert outcome.passed, [(r.layer, r.diff) for r in outcome.rows if not r.passed]
    d = outcome.row("rois").diff
    assert d.unexplained == 0 and d.paired == d.reference_rows >= 50, d.summary()
    onnx = api.verify(loaded, input=inputs, reference="onnxruntime").outcome
    assert onnx.passed, [(r.layer, r.diff) for r in onnx.rows if not r.passed]
    d = onnx.row("rois").diff
    assert d.unexplained == 0 and d.tolerated == 0 and d.paired == d.reference_rows >= 50, d.summary()


# -- translators of the helper ops only DetectionOutput and the proposal layer emit ------------------

def _helper_graphs():
    """(name, symbol of input x (2, 6)) per helper op, on values that exercise its edge cases."""
    import mxnet as mx
    x = mx.sym.var("x")
    i = mx.sym._internal
    sorted_idx = mx.sym.argsort(x, axis=1, is_ascend=False, name="order")
    return {
        "topk": mx.sym.topk(x, axis=1, k=3, ret_typ="indices", is_ascend=False, name="y"),
        "topk-value": mx.sym.topk(x, axis=1, k=2, ret_typ="value", is_ascend=True, name="y"),
        "argsort-take": mx.sym.take(mx.sym.reshape(x, shape=(12,), name="flat"), sorted_idx, axis=0, name="y"),
        "broadcast_like-axes": mx.sym.broadcast_like(mx.sym.slice_axis(x, axis=1, begin=0, end=1, name="col"), x,
                                                     lhs_axes=(1,), rhs_axes=(1,), name="y"),
        "lesser_scalar": i._lesser_scalar(x, scalar=0.25, name="y"),
        # Python's %: the result takes the divisor's sign
        "mod": mx.sym.broadcast_mod(x, mx.sym.slice_axis(x, axis=0, begin=1, end=2, name="div"), name="y"),
        "minimum": mx.sym.broadcast_minimum(x, mx.sym.slice_axis(x, axis=1, begin=2, end=3, name="c"), name="y"),
        "round": mx.sym.round(x, name="y"),
    }


@pytest.mark.parametrize("name", list(_helper_graphs()))
def test_helper_op_translators_match_mxnet(name):
    pytest.importorskip("onnxruntime")
    import mxnet as mx
    from caffe2mx.converter.onnx_export.exporter import symbol_to_onnx, check
    import onnxruntime as ort
    # an identity on top: ops with a hidden second output (topk values) name theirs
    # `<name>_output0`, which the exporter does not look up as a graph output's shape
    sym = mx.sym.identity(_helper_graphs()[name], name="out")
    x = np.array([[-2.5, -0.5, 0.5, 1.5, 2.25, -1.75], [3.0, -2.0, 0.75, -0.5, 1.25, 4.0]], np.float32)
    want = sym.eval(ctx=mx.cpu(), x=mx.nd.array(x))[0].asnumpy()
    name_map = {"inputs": {"x": "x"}, "input_shapes": {"x": [2, 6]}, "outputs": {"y": sym.list_outputs()[0]},
                "blobs": {}, "layers": {}, "nodes": {}}
    model = symbol_to_onnx(sym, {}, {}, name_map, dynamic_batch=False)
    check(model)
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got.reshape(want.shape), want)
