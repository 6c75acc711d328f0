"""The inference-optimised model (`convert --optimize`): every folding exact against the
unfolded (faithful) model and against real Caffe, the name map still locating every blob
that survives and marking those folded away, ONNX export and verify working on it.

Expected values are the faithful model's outputs (itself tested against real Caffe in
test_golden_caffe.py) and real-Caffe blobs from ../shared/fixtures/caffe-golden; nothing
here is typed in from the optimiser's own output.
"""
import json

import numpy as np
import pytest

from caffe2mx.converter.caffemodel import LayerBlobs, read_caffemodel
from caffe2mx.converter.layers import handler_for
from caffe2mx.converter.optimize import bind_inference, convert_optimized, optimize_graph
from caffe2mx.converter.pipeline import bind, convert_net, load_net, read_net
from caffe2mx.converter.weights import expected_blob_shapes
from caffe2mx.verify.metrics import GOLDEN_RTOL, compare
from caffe2mx.verify.mxnet_run import run_blobs

from conftest import GOLDEN, assert_ownership, golden_cases, need_shared

FOLD_RTOL = 1e-5  # folded vs unfolded model, float32 both

#: golden cases where the optimiser changes something (a foldable or droppable layer)
OPTIMISED_TYPES = {"BN", "BatchNorm", "Scale", "Bias", "Split", "Dropout", "Concat", "Interp", "Power", "Eltwise"}


def _golden_opt_cases():
    return [c for c in golden_cases() if c.values[0] is None or OPTIMISED_TYPES & set(c.values[0]["layer_types"])]


def _run(conv, inputs):
    return run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, inputs)


def _assert_close(got, want, rtol, what):
    d = compare(got, want)
    assert d.shape_ok and d.nonfinite_ok, f"{what}: shape or NaN/inf positions differ"
    assert d.max_rel <= rtol, f"{what}: max relative error {d.max_rel:.2e} > {rtol:g}"


def _assert_name_map_complete(faithful, opt):
    """Every Caffe layer is in the optimised map (folded ones with no nodes and a host or a
    removal note); every blob version of the faithful model either survives or is marked."""
    nm = opt.name_map
    folded = nm["optimized"]["folded_blobs"]
    assert set(faithful.name_map["layers"]) <= set(nm["layers"])
    for layer, entry in nm["layers"].items():
        if not entry["nodes"]:
            assert entry.get("folded_into") in nm["layers"] or entry.get("removed"), layer
            if entry.get("folded_into"):
                assert nm["layers"][entry["folded_into"]]["nodes"], f"{layer} folded into a layer with no nodes"
    for vid, info in faithful.name_map["versions"].items():
        assert (vid in nm["versions"]) != (vid in folded), f"{vid}: neither located nor marked folded (or both)"
        if vid in folded:
            assert folded[vid]["caffe_blob"] == info["caffe_blob"]
    symbol_outputs = set(opt.symbol.get_internals().list_outputs()) | set(nm["inputs"].values())
    for vid, info in nm["versions"].items():
        assert info["mxnet"] in symbol_outputs, f"{vid} maps to {info['mxnet']}, which the symbol lacks"
    for f in nm["optimized"]["foldings"]:
        assert f["layer"] in nm["layers"]


@pytest.mark.parametrize("case", _golden_opt_cases())
def test_optimised_model_matches_caffe_and_the_unfolded_model(case):
    folder = need_shared(GOLDEN / case["folder"])
    weights = folder / "weights.caffemodel"
    loaded = load_net(folder / "net.prototxt", weights if weights.exists() else None)
    faithful, opt = convert_net(loaded), convert_optimized(loaded)
    assert_ownership(opt)
    _assert_name_map_complete(faithful, opt)
    caffe = np.load(folder / "blobs.npz")
    inputs = {name: caffe[name] for name in opt.name_map["inputs"]}
    got, want = _run(opt, inputs), _run(faithful, inputs)
    folded_names = {v["caffe_blob"] for v in opt.name_map["optimized"]["folded_blobs"].values()}
    for blob in caffe.files:
        if "_split_" in blob:
            continue
        if blob not in got:
            assert blob in folded_names, f"Caffe blob {blob} neither in the optimised model nor marked folded"
            continue
        _assert_close(got[blob], caffe[blob], GOLDEN_RTOL, f"{blob} vs Caffe")
        _assert_close(got[blob], want[blob], FOLD_RTOL, f"{blob} vs the unfolded model")
    for blob in opt.name_map["outputs"]:
        _assert_close(got[blob], want[blob], FOLD_RTOL, f"output {blob}")


# -- every producer of the golden set, with each kind of affine after it ---------------------------

PRODUCERS = ["convolution_k3_p1", "convolution_group2", "convolution_depthwise", "convolution_dilation2",
             "convolution_nobias", "convolution_k3_s2_nopad_odd", "deconvolution_k4_s2_p1",
             "deconvolution_k4_s2_p1_group2", "deconvolution_k3_s2_nobias", "innerproduct_4d",
             "innerproduct_transpose", "innerproduct_nobias", "innerproduct_axis2"]

AFFINES = {
    "BN": 'layer {{ name: "bn" type: "BN" bottom: "{top}" top: "bn" bn_param {{ frozen: true }} }}\n',
    "BatchNorm+Scale": 'layer {{ name: "bn" type: "BatchNorm" bottom: "{top}" top: "{top}" '
                       'batch_norm_param {{ use_global_stats: true eps: 1e-3 }} }}\n'
                       'layer {{ name: "sc" type: "Scale" bottom: "{top}" top: "{top}" scale_param {{ bias_term: true }} }}\n',
    "BatchNorm,Scale": 'layer {{ name: "bn" type: "BatchNorm" bottom: "{top}" top: "bn" }}\n'
                       'layer {{ name: "sc" type: "Scale" bottom: "bn" top: "sc" scale_param {{ bias_term: false }} }}\n',
}


def _extended_net(tmp_path, case, affine, relu=False):
    """The golden producer net with `affine` (and a ReLU) after its layer; the producer keeps
    its real-Caffe golden weights and the new layers get seeded blobs from their handlers."""
    folder = need_shared(GOLDEN / case)
    text = (folder / "net.prototxt").read_text()
    top = json.loads((GOLDEN / "index.json").read_text())
    top = next(c for c in top["cases"] if c["folder"] == case)["outputs"][0]
    text += AFFINES[affine].format(top=top)
    if relu:
        text += 'layer { name: "relu" type: "ReLU" bottom: "LAST" top: "LAST" }\n'.replace(
            "LAST", {"BN": "bn", "BatchNorm+Scale": top, "BatchNorm,Scale": "sc"}[affine])
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    net = read_net(path)
    weights = dict(read_caffemodel(folder / "weights.caffemodel"))
    rng = np.random.default_rng(7)
    for node in net.graph.nodes:
        shapes = expected_blob_shapes(net.graph, net.shapes).get(node.name)
        if shapes and node.name not in weights:
            blobs = handler_for(node.type).sample_blobs(node, shapes, rng, {})
            weights[node.name] = LayerBlobs(node.name, node.type, tuple(blobs), (False,) * len(blobs))
    return bind(net, weights), np.load(folder / "blobs.npz")


@pytest.mark.parametrize("affine", sorted(AFFINES))
@pytest.mark.parametrize("case", PRODUCERS)
def test_affine_after_every_producer_folds_exactly(tmp_path, case, affine):
    loaded, caffe = _extended_net(tmp_path, case, affine, relu=affine == "BN")
    faithful, opt = convert_net(loaded), convert_optimized(loaded)
    assert_ownership(opt)
    _assert_name_map_complete(faithful, opt)
    producer = loaded.graph.nodes[0].name
    layers = opt.name_map["layers"]
    foldable = case != "innerproduct_axis2"  # its outputs lie on axis 2, BN's channels on axis 1
    for name in ("bn", "sc"):
        if name in layers:
            if foldable:
                assert layers[name].get("folded_into") == producer, layers[name]
            else:
                assert layers[name].get("folded_into") == "bn" or layers[name].get("emitted_as") == "_ChannelAffine"
    inputs = {name: caffe[name] for name in opt.name_map["inputs"]}
    got, want = _run(opt, inputs), _run(faithful, inputs)
    assert set(got) >= set(opt.name_map["outputs"])
    for blob in got:
        _assert_close(got[blob], want[blob], FOLD_RTOL, blob)
    # bound as a user runs it: oneDNN's subgraph backend fusing convolution + bias (+ ReLU)
    exe = bind_inference(opt)
    (in_var,) = opt.input_names()
    exe.arg_dict[in_var][:] = inputs["data"]
    out = exe.forward(is_train=False)[0].asnumpy()
    _assert_close(out, want[next(iter(opt.name_map["outputs"]))], FOLD_RTOL, "output, MKLDNN backend")


def test_passes_leave_the_faithful_graph_alone(tmp_path):
    loaded, _ = _extended_net(tmp_path, "convolution_nobias", "BN", relu=True)
    conv = loaded.graph.nodes[0]
    before = [np.array(b, copy=True) for b in conv.blobs]
    opt = optimize_graph(loaded.graph, loaded.shapes, {"bn_blob3": "inv_std"})
    folded = next(n for n in opt.graph.nodes if n.name == conv.name)
    assert folded.param.convolution_param.bias_term and not conv.param.convolution_param.bias_term
    assert folded.param is not conv.param
    assert all(np.array_equal(a, b) for a, b in zip(before, conv.blobs))
    assert [n.name for n in loaded.graph.nodes] == ["conv", "bn", "relu"]


def test_bn_blob3_variance_folds_with_the_same_reading(tmp_path):
    """A fork whose 4th BN blob is a variance: folding reads it the same way as the emitter."""
    loaded, caffe = _extended_net(tmp_path, "convolution_k3_p1", "BN")
    loaded = bind(read_net(tmp_path / "net.prototxt"),
                  {n.name: LayerBlobs(n.name, n.type, tuple(np.abs(b) if n.type == "BN" else b for b in n.blobs),
                                      (False,) * len(n.blobs)) for n in loaded.graph.nodes if n.blobs})
    faithful = convert_net(loaded, bn_blob3="variance")
    opt = convert_optimized(loaded, bn_blob3="variance")
    inputs = {"data": caffe["data"]}
    out = next(iter(opt.name_map["outputs"]))
    _assert_close(_run(opt, inputs)[out], _run(faithful, inputs)[out], FOLD_RTOL, out)
    assert opt.name_map["options"]["bn_blob3"] == "variance"


def test_onnx_export_of_the_optimised_model(tmp_path):
    pytest.importorskip("onnxruntime")
    from caffe2mx.converter.onnx_export import OnnxRunner, export_conversion
    folder = need_shared(GOLDEN / "net_attention_block")
    loaded = load_net(folder / "net.prototxt", folder / "weights.caffemodel")
    opt = convert_optimized(loaded)
    affine = opt.name_map["layers"]["A/mask/up_sample/interp/bn"]
    assert affine["emitted_as"] == "_ChannelAffine" and affine["nodes"]
    export_conversion(opt, tmp_path / "opt.onnx")
    caffe = np.load(folder / "blobs.npz")
    inputs = {"data": caffe["data"]}
    got = OnnxRunner(tmp_path / "opt.onnx").run(inputs)
    want = _run(opt, inputs)
    assert set(want) - set(got) == set()
    for blob, value in want.items():
        _assert_close(got[blob], value, FOLD_RTOL, f"ONNX Runtime {blob}")
    out = next(iter(opt.name_map["outputs"]))
    _assert_close(got[out], caffe[out], GOLDEN_RTOL, "ONNX Runtime output vs Caffe")


def test_convert_optimize_then_verify_the_optimised_model(tmp_path, capsys):
    from caffe2mx.cli import main
    import caffe2mx
    folder = need_shared(GOLDEN / "net_attention_block")
    prefix = tmp_path / "net"
    assert main(["convert", str(folder / "net.prototxt"), str(folder / "weights.caffemodel"), "-o", str(prefix),
                 "--optimize"]) == 0
    err = capsys.readouterr().err
    assert "folded into the weights of the layer before: conv1/bn" in err
    assert "emitted as one per-channel affine: A/mask/up_sample/interp/bn" in err
    for suffix in ("symbol.json", "0000.params", "namemap.json"):
        assert (tmp_path / f"net-{suffix}").is_file() and (tmp_path / f"net-opt-{suffix}").is_file()
    opt = caffe2mx.load(f"{prefix}-opt")
    assert opt.name_map["caffemodel"] == str(folder / "weights.caffemodel")
    assert opt.name_map["layers"]["conv1/bn"]["folded_into"] == "conv1"
    run = caffe2mx.verify(model=f"{prefix}-opt", reference=str(folder / "blobs.npz"))
    assert run.outcome.passed
    compared = {r.blob for r in run.outcome.rows}
    folded = {v["caffe_blob"] for v in opt.name_map["optimized"]["folded_blobs"].values()}
    assert "conv1" in folded and "conv1" not in compared
    assert "A/fusion" in compared  # the final output


def test_optimize_api_reuses_a_conversion_and_keeps_seeded_weights(tmp_path):
    import caffe2mx
    folder = need_shared(GOLDEN / "net_input_dim")
    conv = caffe2mx.convert(folder / "net.prototxt", seed=3)
    opt = caffe2mx.optimize(conv, output_prefix=tmp_path / "o")
    assert opt.name_map["seeded_weights"] == 3 and opt.name_map["caffemodel"] is None
    assert (tmp_path / "o-namemap.json").is_file()
    run = caffe2mx.verify(model=str(tmp_path / "o"))
    assert run.outcome.passed
    with pytest.raises(Exception, match="prototxt"):
        caffe2mx.optimize(caffe2mx.load(tmp_path / "o"))


def test_runtimes_benchmark_runs_on_a_small_net(tmp_path):
    """The benchmark script itself (numbers are not asserted: speed is never a unit test)."""
    import subprocess
    import sys
    from conftest import REPO
    folder = need_shared(GOLDEN / "net_attention_block")
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "runtimes.py"), str(folder / "net.prototxt"),
                        str(folder / "weights.caffemodel"), "--batches", "2", "--rounds", "1", "--warmup", "0",
                        "--rows", "faithful,optimised,int8,ort-optimised", "--calib", "4", "--eval", "4", "--top", "3",
                        "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "MXNet optimised symbol" in r.stdout and "top operators by time" in r.stdout
    result = json.loads(out.read_text())
    rows = {row["label"]: row for row in result["rows"]}
    assert set(rows) == {"MXNet faithful symbol", "MXNet optimised symbol", "MXNet int8 (oneDNN)",
                         "ONNX Runtime optimised export"}
    assert rows["MXNet optimised symbol"]["parity"]["2"][0] < FOLD_RTOL  # same outputs as the faithful model


def test_kernels_benchmark_runs_on_a_small_net():
    """benchmarks/kernels.py: oneDNN primitives and ONNX Runtime nodes by kind, at 1 and 2 threads."""
    import subprocess
    import sys
    from conftest import REPO
    folder = need_shared(GOLDEN / "net_attention_block")
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "kernels.py"), str(folder / "net.prototxt"),
                        "--threads", "2", "--passes", "2"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "convolution" in r.stdout and "MXNet 2t" in r.stdout and "ORT 1t" in r.stdout
