"""Golden tests, one small net per layer type and parameter variant.

Each case: a prototxt built here, seeded random input and blobs written as a real
caffemodel, converted by caffe2mx, run in MXNet (float32) and compared with the
independent NumPy reference (float64) at GOLDEN_RTOL. MXNet's own shape inference
must agree with the converter's Caffe shapes and with the reference's.
"""
import itertools
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


def _inputs_block(style, inputs):
    """Net inputs in one of Caffe's three declaration styles."""
    out = []
    if style == "input_dim":
        for name, shape in inputs:
            out.append(f'input: "{name}"\n' + "".join(f"input_dim: {d}\n" for d in shape))
    elif style == "input_shape":
        for name, shape in inputs:
            out.append(f'input: "{name}"\ninput_shape {{ ' + " ".join(f"dim: {d}" for d in shape) + " }\n")
    else:
        for name, shape in inputs:
            dims = " ".join(f"dim: {d}" for d in shape)
            out.append(f'layer {{ name: "{name}_in" type: "Input" top: "{name}" '
                       f'input_param {{ shape {{ {dims} }} }} }}\n')
    return "".join(out)


def make_net(layers, inputs=(("data", (2, 4, 7, 7)),), style="input_layer"):
    return 'name: "sweep"\n' + _inputs_block(style, inputs) + layers


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


def check_net(tmp_path, case_id, text, *, opts=None, bn_blob3="inv_std", v1_types=None, v2_types=None):
    """Convert, run and compare every blob of the net; return the Conversion."""
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
    inputs = {k: np.asarray(v, np.float32) for k, v in inputs.items()}
    conv = caffe2mx.convert(str(proto), str(model) if model else None, bn_blob3=bn_blob3)
    ref = forward(build_graph(read_prototxt(proto)), inputs,
                  weights=read_caffemodel(model) if model else {}, bn_blob3=bn_blob3)
    got = run_blobs(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, inputs)
    internals = conv.symbol.get_internals()
    in_shapes = {conv.name_map["inputs"][k]: v.shape for k, v in inputs.items()}
    cgraph = conv.net.graph
    checked = 0
    for blob in cgraph.final_version:
        mx_name = conv.name_map["blobs"].get(blob)
        if mx_name is None or cgraph.final_version[blob] in cgraph.inputs:  # an input nothing wrote
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



def layer(name, type_, bottoms=("data",), tops=None, param=""):
    tops = tops or (name,)
    return (f'layer {{ name: "{name}" type: "{type_}" ' + "".join(f'bottom: "{b}" ' for b in bottoms)
            + "".join(f'top: "{t}" ' for t in tops) + param + " }\n")


CASES = []


def case(case_id, text, **kw):
    assert case_id not in {c.id for c in CASES}, case_id
    CASES.append(pytest.param(text, kw, id=case_id))


# Convolution: kernel x stride x pad, then group / depthwise / dilation, bias on and off
KERNELS = {"k3": "kernel_size: 3", "k1": "kernel_size: 1", "kh3w2": "kernel_h: 3 kernel_w: 2"}
STRIDES = {"s1": "", "s2": "stride: 2", "sh2w1": "stride_h: 2 stride_w: 1"}
PADS = {"p0": "", "p1": "pad: 1", "ph0w2": "pad_h: 0 pad_w: 2"}
for n, ((kn, k), (sn, s), (pn, p)) in enumerate(itertools.product(KERNELS.items(), STRIDES.items(), PADS.items())):
    bias = "" if n % 2 else "bias_term: false"
    case(f"conv-{kn}-{sn}-{pn}-{'bias' if n % 2 else 'nobias'}",
         make_net(layer("c", "Convolution", param=f"convolution_param {{ num_output: 6 {k} {s} {p} {bias} }}"),
                  (("data", (2, 4, 9, 8)),)))
GROUPS = {"group2": "num_output: 6 group: 2", "depthwise": "num_output: 4 group: 4",
          "depthwise-x2": "num_output: 8 group: 4", "dil2": "num_output: 6 dilation: 2",
          "dil2-group2-s2": "num_output: 6 dilation: 2 group: 2 stride: 2 pad: 2"}
for (gn, g), bias in itertools.product(GROUPS.items(), (True, False)):
    case(f"conv-{gn}-{'bias' if bias else 'nobias'}",
         make_net(layer("c", "Convolution",
                        param=f"convolution_param {{ {g} kernel_size: 3 pad: 1 bias_term: {str(bias).lower()} }}"),
                  (("data", (2, 4, 9, 8)),)))

# Deconvolution
for (k, s, p, g) in itertools.product((2, 3, 4), (1, 2, 3), (0, 1), (1, 2)):
    if p >= k:
        continue
    bias = (k + s + p + g) % 2 == 0
    case(f"deconv-k{k}-s{s}-p{p}-g{g}-{'bias' if bias else 'nobias'}",
         make_net(layer("d", "Deconvolution", param=f"convolution_param {{ num_output: 6 kernel_size: {k} "
                        f"stride: {s} pad: {p} group: {g} bias_term: {str(bias).lower()} }}"),
                  (("data", (2, 4, 5, 6)),)))

# The fork's BN (in place, as the fork writes it), both blob-3 conventions
for mode, eps, inplace in itertools.product(("inv_std", "variance"), (None, 1e-3), (True, False)):
    top = ("data",) if inplace else ("bn",)
    ep = f"eps: {eps}" if eps else ""
    case(f"BN-{mode}-eps{eps or 'default'}-{'inplace' if inplace else 'out'}",
         make_net(layer("bn", "BN", tops=top, param=f"bn_param {{ frozen: true {ep} }}")), bn_blob3=mode)
case("BN-inv_std-upto1000-exact-fold",
     make_net(layer("bn", "BN", tops=("data",), param="bn_param { frozen: true }")),
     opts={"inv_std": (0.1, 1000.0), "in_scale": 1e-3})

# BVLC BatchNorm: global stats (unset/true/false) x factor x eps, alone, + in-place Scale (fused),
# + not-in-place Scale (unfused)
for n, (ugs, factor, follow) in enumerate(itertools.product(("unset", "true", "false"), (0.0, 0.5, 1.0),
                                                            ("alone", "fused", "fused-nobias", "unfused"))):
    eps = "" if n % 2 else "eps: 0.001"
    g = "" if ugs == "unset" else f"use_global_stats: {ugs}"
    bn_top = ("bn",) if follow == "unfused" else ("data",)
    text = layer("bn", "BatchNorm", tops=bn_top, param=f"batch_norm_param {{ {g} {eps} }}")
    if follow != "alone":
        text += layer("sc", "Scale", bottoms=bn_top, tops=("sc",) if follow == "unfused" else bn_top,
                      param=f"scale_param {{ bias_term: {'false' if follow == 'fused-nobias' else 'true'} }}")
    case(f"BatchNorm-gs_{ugs}-f{factor}-{'eps1e-3' if eps else 'epsdef'}-{follow}", make_net(text),
         opts={"factor": factor})

# Scale / Bias: axis x num_axes, blob or second bottom
DATA4 = ("data", (2, 3, 4, 5))
for type_, axis, num_axes, second in itertools.product(("Scale", "Bias"), (0, 1, 2), (0, -1, 1, 2), (False, True)):
    shape = DATA4[1]
    end = len(shape) if num_axes == -1 else axis + num_axes
    pshape = shape[axis:end]
    if second and num_axes == 0:
        continue
    pname = "scale_param" if type_ == "Scale" else "bias_param"
    extra = " bias_term: true" if type_ == "Scale" and not second and axis == 1 else ""
    param = f"{pname} {{ axis: {axis} num_axes: {num_axes}{extra} }}"
    ins = (DATA4, ("p", pshape)) if second else (DATA4,)
    bots = ("data", "p") if second else ("data",)
    case(f"{type_}-axis{axis}-num_axes{num_axes}-{'bottom' if second else 'blob'}",
         make_net(layer("s", type_, bottoms=bots, param=param), ins))
case("Scale-axis-neg1-blob", make_net(layer("s", "Scale", param="scale_param { axis: -1 }"), (DATA4,)))

# Element-wise activations
ACTS = {
    "ReLU": "", "ReLU-slope0.1": "relu_param { negative_slope: 0.1 }",
    "PReLU": "", "PReLU-shared": "prelu_param { channel_shared: true }",
    "ELU": "", "ELU-alpha0.5": "elu_param { alpha: 0.5 }",
    "Sigmoid": "", "TanH": "", "AbsVal": "",
    "Power-sq": "power_param { power: 2 scale: 0.5 shift: 1 }",
    "Power-sqrt": "power_param { power: 0.5 scale: 2 shift: 7 }",
    "Power-lin": "power_param { scale: -1.5 shift: 0.25 }",
    "Power-cube": "power_param { power: 3 }",
    "Exp": "", "Exp-base2": "exp_param { base: 2 scale: 0.5 shift: 1 }",
    "Log": "", "Log-base10": "log_param { base: 10 scale: 2 shift: 7 }",
    "Clip": "clip_param { min: -0.5 max: 0.7 }",
    "Swish": "", "Swish-beta2": "swish_param { beta: 2 }",
}
for (aid, param), inplace in itertools.product(ACTS.items(), (True, False)):
    type_ = aid.split("-")[0]
    opts = {}
    if type_ == "Log" and "shift" not in param:
        opts = {"in_shift": 6.0}
    case(f"{aid}-{'inplace' if inplace else 'out'}",
         make_net(layer("a", type_, tops=("data",) if inplace else ("a",), param=param)), opts=opts)

# Pooling: sizes where ceil and floor differ, pad correction (k3 s2 p2 on 4, k2 s2 p1 on 5)
KSP = [(3, 2, 0), (3, 2, 1), (2, 2, 0), (2, 2, 1), (3, 2, 2), (3, 1, 1), (3, 3, 1), (1, 2, 0)]
for method, h, (k, s, p) in itertools.product(("MAX", "AVE"), (4, 5, 8), KSP):
    pad = f"pad: {p}" if p else ""
    case(f"pool-{method}-h{h}w{h + 1}-k{k}s{s}p{p}",
         make_net(layer("pool", "Pooling", param=f"pooling_param {{ pool: {method} kernel_size: {k} "
                        f"stride: {s} {pad} }}"), (("data", (2, 3, h, h + 1)),)))
for method, (k, s, p) in itertools.product(("MAX", "AVE"), [(3, 2, 0), (3, 2, 1), (2, 2, 1), (3, 2, 2)]):
    case(f"pool-{method}-floor-k{k}s{s}p{p}",
         make_net(layer("pool", "Pooling", param=f"pooling_param {{ pool: {method} kernel_size: {k} "
                        f"stride: {s} pad: {p} round_mode: FLOOR }}"), (("data", (2, 3, 8, 9)),)))
for method in ("MAX", "AVE"):
    case(f"pool-{method}-global",
         make_net(layer("pool", "Pooling", param=f"pooling_param {{ pool: {method} global_pooling: true }}")))
    case(f"pool-{method}-kh3kw2-sh2sw1-ph1pw0",
         make_net(layer("pool", "Pooling", param=f"pooling_param {{ pool: {method} kernel_h: 3 kernel_w: 2 "
                        "stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0 }")))

# Eltwise with 2 and 3 bottoms
for op, nb in itertools.product(("SUM", "SUM-coeff", "PROD", "MAX"), (2, 3)):
    names = [f"x{i}" for i in range(nb)]
    coeff = " ".join(f"coeff: {c}" for c in (0.5, -2, 1.5)[:nb]) if op == "SUM-coeff" else ""
    case(f"Eltwise-{op}-{nb}",
         make_net(layer("e", "Eltwise", bottoms=names, param=f"eltwise_param {{ operation: {op.split('-')[0]} "
                        f"{coeff} }}"), [(x, (2, 3, 4, 5)) for x in names]))

# The fork's Interp in every mode, with cropping and 1-px outputs
INTERP = {
    "zoom2": ("zoom_factor: 2", (2, 3, 5, 6), None),
    "zoom3": ("zoom_factor: 3", (2, 3, 4, 3), None),
    "shrink2": ("shrink_factor: 2", (2, 3, 9, 8), None),
    "shrink3": ("shrink_factor: 3", (2, 3, 10, 7), None),
    "hw-up": ("height: 11 width: 7", (2, 3, 5, 4), None),
    "hw-down": ("height: 3 width: 2", (2, 3, 9, 8), None),
    "hw-same": ("height: 5 width: 6", (2, 3, 5, 6), None),
    "hw-1px": ("height: 1 width: 1", (2, 3, 5, 6), None),
    "hw-from-1px": ("height: 4 width: 5", (2, 3, 1, 1), None),
    "hw-1xN": ("height: 1 width: 7", (2, 3, 4, 3), None),
    "bottom-up": ("", (2, 3, 4, 5), (1, 1, 8, 9)),
    "bottom-down": ("", (2, 3, 8, 9), (1, 2, 3, 5)),
    "bottom-1px": ("", (2, 3, 4, 5), (1, 1, 1, 1)),
    "zoom2-crop": ("zoom_factor: 2 pad_beg: -1 pad_end: -1", (2, 3, 6, 7), None),
    "shrink2-crop": ("shrink_factor: 2 pad_beg: -1 pad_end: 0", (2, 3, 9, 8), None),
    "hw-crop": ("height: 9 width: 4 pad_end: -2", (2, 3, 6, 7), None),
    "bottom-crop": ("pad_beg: -2 pad_end: -1", (2, 3, 7, 8), (1, 1, 6, 3)),
    "crop-to-1px": ("pad_beg: -2 pad_end: -2 height: 4 width: 4", (2, 3, 5, 5), None),
}
for iid, (param, shape, second) in INTERP.items():
    ins = [("data", shape)] + ([("ref", second)] if second else [])
    case(f"Interp-{iid}", make_net(layer("i", "Interp", bottoms=[n for n, _ in ins],
                                         param=f"interp_param {{ {param} }}"), ins))

# InnerProduct
for axis, transpose, bias in itertools.product((1, 2), (False, True), (True, False)):
    case(f"InnerProduct-axis{axis}-{'T' if transpose else 'N'}-{'bias' if bias else 'nobias'}",
         make_net(layer("fc", "InnerProduct", param=f"inner_product_param {{ num_output: 5 axis: {axis} "
                        f"transpose: {str(transpose).lower()} bias_term: {str(bias).lower()} }}"), (DATA4,)))

# Softmax, shape layers, Dropout, LRN
for axis in (1, 2, -1, 0):
    case(f"Softmax-axis{axis}", make_net(layer("sm", "Softmax", param=f"softmax_param {{ axis: {axis} }}"),
                                         (DATA4,)))
case("Softmax-2d", make_net(layer("sm", "Softmax"), (("data", (3, 7)),)))
for axis in (0, 1, 2, -1):
    case(f"Concat-axis{axis}", make_net(layer("cat", "Concat", bottoms=("a", "b", "c"),
                                              param=f"concat_param {{ axis: {axis} }}"),
                                        [(n, tuple(2 + j if d == axis % 4 else x for d, x in enumerate((2, 3, 4, 5))))
                                         for j, n in enumerate("abc")]))
for axis, points in itertools.product((1, 2, 3), ((), (1,), (1, 3))):
    nt = len(points) + 1 if points else 2
    pp = " ".join(f"slice_point: {p}" for p in points)
    case(f"Slice-axis{axis}-{'-'.join(map(str, points)) or 'even'}",
         make_net(layer("sl", "Slice", tops=[f"s{i}" for i in range(nt)],
                        param=f"slice_param {{ axis: {axis} {pp} }}"), (("data", (2, 4, 6, 8)),)))
case("Split-3", make_net(layer("sp", "Split", tops=("t0", "t1", "t2"))))
for axis, end in ((1, -1), (2, -1), (1, 2), (0, 1)):
    case(f"Flatten-axis{axis}-end{end}", make_net(layer("f", "Flatten", param=f"flatten_param {{ axis: {axis} "
                                                       f"end_axis: {end} }}"), (DATA4,)))
RESHAPES = {"0-neg1": "shape { dim: 0 dim: -1 }", "0-0-20": "shape { dim: 0 dim: 0 dim: 20 }",
            "6-20": "shape { dim: 6 dim: 20 }", "0-3-2-2-5": "shape { dim: 0 dim: 3 dim: 2 dim: 2 dim: 5 }",
            "neg1-5": "shape { dim: -1 dim: 5 }", "axis1-numaxes1": "shape { dim: 3 dim: 1 } axis: 1 num_axes: 1",
            # Caffe counts a negative reshape axis from one past the end: -1 appends, -2 replaces the last
            "axis-neg1-append": "shape { dim: 1 dim: 1 } axis: -1", "axis-neg2": "shape { dim: 5 dim: 1 } axis: -2",
            "axis2-numaxes0": "shape { dim: 1 } axis: 2 num_axes: 0"}
for rid, body in RESHAPES.items():
    case(f"Reshape-{rid}", make_net(layer("r", "Reshape", param=f"reshape_param {{ {body} }}"),
                                    (DATA4,)))
for axis, offsets in ((2, ""), (2, "offset: 1"), (2, "offset: 1 offset: 2"), (1, "offset: 1"), (3, "offset: 3")):
    case(f"Crop-axis{axis}-{offsets.replace('offset: ', 'o').replace(' ', '') or 'o0'}",
         make_net(layer("cr", "Crop", bottoms=("data", "ref"), param=f"crop_param {{ axis: {axis} {offsets} }}"),
                  (("data", (2, 4, 7, 9)), ("ref", (1, 3, 4, 5)))))
case("Dropout-inplace", make_net(layer("dr", "Dropout", tops=("data",), param="dropout_param { dropout_ratio: 0.3 }")))
case("Dropout-out", make_net(layer("dr", "Dropout", param="dropout_param { dropout_ratio: 0.7 }")))
for region, size, k in itertools.product(("ACROSS_CHANNELS", "WITHIN_CHANNEL"), (3, 5), (1.0, 2.0)):
    case(f"LRN-{region}-n{size}-k{k}",
         make_net(layer("lrn", "LRN", param=f"lrn_param {{ norm_region: {region} local_size: {size} "
                        f"alpha: 0.3 beta: 0.75 k: {k} }}"), (("data", (2, 7, 6, 5)),)))

# The three input declaration styles, on a small two-layer net
for style in ("input_dim", "input_shape", "input_layer"):
    case(f"inputs-{style}", make_net(layer("c", "Convolution", param="convolution_param { num_output: 3 "
                                           "kernel_size: 3 pad: 1 }") + layer("r", "ReLU", bottoms=("c",), tops=("c",)),
                                     (("data", (1, 2, 5, 6)),), style=style))


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
