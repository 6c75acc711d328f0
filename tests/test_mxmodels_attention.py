"""Residual Attention Networks in mxmodels: every registered model runs, hybridizes, exports
and trains; sizes and multiply-adds match docs/architectures.md; Caffe weights load by
structure and give the converter's numbers."""
import json
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon
from mxnet.gluon import nn

from caffe2mx.mxmodels import get_model, list_models, model_config
from caffe2mx.converter.pipeline import read_net
from conftest import UPSTREAM, need_shared, write_test_caffemodel
from caffe2mx.mxmodels.blocks.attention import caffe_maxpool, resize_like
from caffe2mx.mxmodels.blocks.residual import PreActBottleneck, ResNeXtUnit, caffe_layers

REPO = Path(__file__).resolve().parents[1]
PROTOTXTS = REPO / "prototxts"


MODELS = sorted(set(list_models("attention*")) | set(list_models("cifar_attention*"))
                | set(list_models("face_attention*")))

# name -> (convention, millions, tolerance). "all" counts BN running statistics (what
# collect_params() holds), "trainable" only parameters with a gradient; the sheet gives
# the face and AttentionNeXt sizes to 0.01M only.
PARAMS = {
    "attention56": ("all", 31.883, 0.001),
    "attention92": ("all", 52.600, 0.001),
    "attention128": ("all", 57.637, 0.001),
    "attention164": ("all", 70.514, 0.001),
    "attention236": ("all", 96.267, 0.001),
    "attention452": ("all", 177.147, 0.001),
    "attentionnext56": ("trainable", 31.32, 0.005),
    "attentionnext92": ("trainable", 52.10, 0.005),
    "cifar_attention56": ("trainable", 7.203, 0.001),
    "cifar_attention92": ("trainable", 12.171, 0.001),
    "cifar_attention128": ("trainable", 13.112, 0.001),
    "cifar_attention164": ("trainable", 16.067, 0.001),
    "cifar_attention236": ("trainable", 21.976, 0.001),
    "cifar_attention452": ("trainable", 40.079, 0.001),
    "face_attention56": ("trainable", 81.20, 0.005),
    # The bruinxiong symbol's structure gives 101.904M; the sheet prints 101.91M.
    "face_attention92": ("trainable", 101.91, 0.0075),
}
CONV_FC = {"attention56": 31.738, "attention92": 52.333, "attention128": 57.297,
           "attention164": 70.077, "attention236": 95.636, "attention452": 175.852,
           "attentionnext56": 31.22, "attentionnext92": 51.93,
           "face_attention56": 81.06, "face_attention92": 101.66}
MACS = {"attention56": 6.27e9, "attention92": 10.53e9, "attentionnext56": 6.42e9,
        "attentionnext92": 10.70e9}
# The deep ImageNet nets are checked at 195x195, the smallest input that still ends in the
# 7x7 map the 7x7 average pool and the 2048-input classifier need, and with batch 1.
HEAVY = {"attention128", "attention164", "attention236", "attention452", "cifar_attention452"}


def _input_shape(name, batch=1):
    side = model_config(name).input_size
    if name in HEAVY and side == 224:
        side = 195
    return (batch, 3, side, side)


def _output_shape(name, batch):
    return (batch, model_config(name).classes)


def _symbol_and_shapes(net, shape):
    sym = net(mx.sym.var("data"))
    arg_shapes, _, aux_shapes = sym.infer_shape(data=shape)
    shapes = dict(zip(sym.list_arguments(), arg_shapes))
    shapes.update(zip(sym.list_auxiliary_states(), aux_shapes))
    shapes.pop("data")
    return sym, shapes


def _owners(block, out=None):
    """{parameter name: type of the block that registers it}."""
    out = {} if out is None else out
    for p in block._reg_params.values():
        out[p.name] = type(block)
    for child in block._children.values():
        _owners(child, out)
    return out


def _counts(name, **kwargs):
    """(all, trainable, conv+fc) parameter counts from shape inference: nothing allocated."""
    net = get_model(name, **kwargs)
    params = net.collect_params()
    shapes = {k: p.shape for k, p in params.items()}
    if any(0 in s for s in shapes.values()):
        _, shapes = _symbol_and_shapes(net, _input_shape(name))
        assert set(shapes) == set(params.keys())
    size = {k: int(np.prod(s)) for k, s in shapes.items()}
    owners = _owners(net)
    trainable = sum(n for k, n in size.items() if params[k].grad_req != "null")
    conv_fc = sum(n for k, n in size.items() if issubclass(owners[k], (nn.Conv2D, nn.Dense)))
    return sum(size.values()), trainable, conv_fc


def test_every_family_is_registered():
    expected = {f"attention{d}" for d in (56, 92, 128, 164, 236, 452)}
    expected |= {f"cifar_attention{d}" for d in (56, 92, 128, 164, 236, 452)}
    expected |= {"attentionnext56", "attentionnext92", "face_attention56", "face_attention92"}
    assert set(MODELS) == expected


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count(name):
    convention, millions, tol = PARAMS[name]
    total, trainable, conv_fc = _counts(name)
    sym = get_model(name)(mx.sym.var("data"))
    assert sym.infer_shape(data=_input_shape(name, 2))[1] == [_output_shape(name, 2)]
    got = (total if convention == "all" else trainable) / 1e6
    assert abs(got - millions) <= tol, f"{name}: {got:.4f}M ({convention}) vs {millions}M"
    if name in CONV_FC:
        tol_fc = 0.001 if name.startswith("attention") and "next" not in name else 0.005
        assert abs(conv_fc / 1e6 - CONV_FC[name]) <= tol_fc, f"{name}: conv+fc {conv_fc / 1e6:.4f}M"


@pytest.mark.parametrize("name, millions", [("face_attention56", 84.13), ("face_attention92", 106.70)])
def test_face_parameter_count_with_se(name, millions):
    _, trainable, _ = _counts(name, use_se=True)
    assert abs(trainable / 1e6 - millions) <= 0.005


def _symbol_macs(net, shape):
    """Multiply-adds of every Convolution and FullyConnected node, by shape propagation."""
    sym, shapes = _symbol_and_shapes(net, shape)
    internals = sym.get_internals()
    _, out_shapes, _ = internals.infer_shape(data=shape)
    out_of = dict(zip(internals.list_outputs(), out_shapes))
    total = 0
    nodes = json.loads(sym.tojson())["nodes"]
    for node in nodes:
        if node["op"] not in ("Convolution", "FullyConnected"):
            continue
        weight = shapes[nodes[node["inputs"][1][0]]["name"]]
        out = out_of[node["name"] + "_output"]
        total += int(np.prod(out[1:])) * int(np.prod(weight[1:]))
    return total


@pytest.mark.parametrize("name", sorted(MACS))
def test_multiply_adds(name):
    macs = _symbol_macs(get_model(name), (1, 3, 224, 224))
    assert abs(macs / MACS[name] - 1) <= 0.02, f"{name}: {macs / 1e9:.3f}G"


@pytest.mark.parametrize("name", MODELS)
def test_model_trains_hybridizes_and_exports(name, tmp_path):
    """Training step with gradients everywhere, then the exported symbol gives the same output."""
    batch = 1 if name in HEAVY else 2
    rng = np.random.RandomState(0)
    x = mx.nd.array(rng.uniform(-1, 1, _input_shape(name, batch)).astype("float32"))
    mx.random.seed(0)
    net = get_model(name)
    net.initialize(mx.init.Xavier(magnitude=2))
    net.hybridize()
    with autograd.record():
        out = net(x)
        loss = (out * mx.nd.array(rng.normal(size=out.shape))).sum()
    loss.backward()
    assert out.shape == _output_shape(name, batch)
    assert np.isfinite(out.asnumpy()).all()
    dead = [p.name for p in net.collect_params().values()
            if p.grad_req != "null" and not np.any(p.grad().asnumpy())]
    assert not dead, f"parameters without gradient: {dead[:10]}"

    y = net(x).asnumpy()
    assert y.shape == _output_shape(name, batch) and np.isfinite(y).all()
    net.export(str(tmp_path / name))
    sb = gluon.SymbolBlock.imports(str(tmp_path / f"{name}-symbol.json"), ["data"],
                                   str(tmp_path / f"{name}-0000.params"))
    np.testing.assert_allclose(sb(x).asnumpy(), y, rtol=1e-5, atol=1e-5 * np.abs(y).max())


def test_get_model_kwargs():
    assert get_model("cifar_attention56", classes=100)(mx.sym.var("data")).infer_shape(
        data=(1, 3, 32, 32))[1][0] == (1, 100)
    with pytest.raises(ValueError):
        get_model("attention56", layout="mobile")


# --- building blocks against independent NumPy definitions ---------------------------

def _caffe_max_pool(x, k=3, s=2):
    n, c, h, w = x.shape
    oh, ow = -(-(h - k) // s) + 1, -(-(w - k) // s) + 1
    out = np.empty((n, c, oh, ow), x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = x[:, :, i * s:min(i * s + k, h), j * s:min(j * s + k, w)].max(axis=(2, 3))
    return out


def _caffe_interp(x, oh, ow):
    """Caffe Interp: align corners, ratio in float32, upper neighbour clamped."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, oh, ow), np.float64)
    rh = np.float32((h - 1) / (oh - 1)) if oh > 1 else np.float32(0)
    rw = np.float32((w - 1) / (ow - 1)) if ow > 1 else np.float32(0)
    for i in range(oh):
        hr = np.float32(rh * i)
        h0 = int(hr)
        h1 = min(h0 + 1, h - 1)
        lh = float(hr - h0)
        for j in range(ow):
            wr = np.float32(rw * j)
            w0 = int(wr)
            w1 = min(w0 + 1, w - 1)
            lw = float(wr - w0)
            out[:, :, i, j] = ((1 - lh) * ((1 - lw) * x[:, :, h0, w0] + lw * x[:, :, h0, w1])
                               + lh * ((1 - lw) * x[:, :, h1, w0] + lw * x[:, :, h1, w1]))
    return out


@pytest.mark.parametrize("side", [56, 28, 14, 7, 112, 13])
def test_mask_max_pool_equals_caffe(side):
    x = np.random.RandomState(side).normal(size=(1, 2, side, side)).astype("float32")
    got = caffe_maxpool()(mx.nd.array(x)).asnumpy()
    np.testing.assert_array_equal(got, _caffe_max_pool(x))
    assert got.shape[2] == -(-(side - 3) // 2) + 1


@pytest.mark.parametrize("src, dst", [(7, 14), (14, 28), (28, 56), (4, 7), (7, 7), (13, 25)])
def test_mask_resize_equals_caffe_interp(src, dst):
    x = np.random.RandomState(src * dst).normal(size=(1, 3, src, src)).astype("float32")
    like = mx.nd.zeros((1, 1, dst, dst))
    got = resize_like(mx.nd, mx.nd.array(x), like).asnumpy()
    np.testing.assert_allclose(got, _caffe_interp(x, dst, dst), rtol=1e-5, atol=1e-6)


def test_resnext_unit_fuse_hook():
    """The fuse hook replaces the addition, as a block (with parameters) or a callable."""

    class Gate(gluon.HybridBlock):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            with self.name_scope():
                self.w = self.params.get("w", shape=(1,), init=mx.init.Constant(0.5))

        def hybrid_forward(self, F, res, short, w):
            return F.broadcast_mul(res, w) + short

    x = mx.nd.random.uniform(shape=(2, 64, 8, 8))
    plain = ResNeXtUnit(64, 128, stride=2)
    plain.initialize()
    ref = plain(x)
    gated = ResNeXtUnit(64, 128, stride=2, fuse=Gate())
    gated.initialize()
    assert any(k.endswith("_w") for k in gated.collect_params().keys())
    as_fn = ResNeXtUnit(64, 128, stride=2, fuse=lambda res, short: res * 0 + short)
    as_fn.initialize()
    for unit in (gated, as_fn):
        unit.hybridize()
        assert unit(x).shape == ref.shape == (2, 128, 4, 4)
    only_short = as_fn.shortcut(x)
    np.testing.assert_allclose(as_fn(x).asnumpy(), np.maximum(only_short.asnumpy(), 0), rtol=1e-6)


def test_units_carry_prototxt_names():
    unit = PreActBottleneck(64, 256, name="pre_res_1", in_name="pool1_3x3_s2")
    assert [n for n, _ in caffe_layers(unit)] == [
        "pool1_3x3_s2/bn", "pre_res_1/branch1/conv1_1x1", "pre_res_1/branch1/conv1_1x1/bn",
        "pre_res_1/branch1/conv2_3x3", "pre_res_1/branch1/conv2_3x3/bn",
        "pre_res_1/branch1/conv3_1x1", "pre_res_1/branch2/conv1_1x1"]


# --- Caffe bridge ---------------------------------------------------------------------

def _prototxt_net(path):
    from google.protobuf import text_format

    from caffe2mx.converter.proto import caffe_pb
    net = caffe_pb.NetParameter()
    text_format.Merge(Path(path).read_text(), net)
    return net


def _blob_shapes(net):
    """{layer: [blob shapes]} of the weighted layers, by channel propagation over the prototxt."""
    channels = {net.input[0]: net.input_dim[1]} if net.input else {}
    shapes = {}
    for layer in net.layer:
        c_in = channels.get(layer.bottom[0]) if layer.bottom else None
        c_out = c_in
        if layer.type == "Convolution":
            p = layer.convolution_param
            k = p.kernel_size[0]
            c_out = p.num_output
            shapes[layer.name] = [(c_out, c_in // max(p.group, 1), k, k)]
            if p.bias_term:
                shapes[layer.name].append((c_out,))
        elif layer.type == "BN":
            shapes[layer.name] = [(1, c_in, 1, 1)] * 4
        elif layer.type == "InnerProduct":
            c_out = layer.inner_product_param.num_output
            shapes[layer.name] = [(c_out, c_in), (c_out,)]
        for top in layer.top:
            channels[top] = c_out
    return shapes


def _seeded_blobs(shapes, seed=0):
    """Random blobs; BN inverse stds in [0.1, 10] plus some above 1/sqrt(1e-5) ~ 316."""
    rng = np.random.RandomState(seed)
    blobs = {}
    for name, wanted in shapes.items():
        if len(wanted) == 4:
            c = wanted[0][1]
            inv = rng.uniform(0.1, 10, c)
            inv[rng.rand(c) < 0.1] = rng.uniform(400, 1000)
            arrays = [rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), rng.normal(0, 1, c), inv]
            blobs[name] = [a.reshape(wanted[0]).astype("float32") for a in arrays]
        else:
            blobs[name] = [(rng.normal(0, 1, s) / np.sqrt(np.prod(s[1:]) if len(s) > 1 else 1))
                           .astype("float32") for s in wanted]
    return blobs


@pytest.fixture(scope="module")
def seeded_attention56(tmp_path_factory):
    proto = PROTOTXTS / "attention56.prototxt"
    net = _prototxt_net(proto)
    types = {l.name: l.type for l in net.layer}
    blobs = _seeded_blobs(_blob_shapes(net))
    path = tmp_path_factory.mktemp("bridge") / "attention56.caffemodel"
    write_test_caffemodel(path, blobs, types)
    return proto, path, blobs, types


def test_generated_prototxt_equals_upstream():
    """The bridge test uses prototxts/attention56.prototxt: it is fwang91's file."""
    ours = _prototxt_net(PROTOTXTS / "attention56.prototxt")
    theirs = _prototxt_net(need_shared(UPSTREAM / "Attention-56-deploy.prototxt"))
    assert [(l.name, l.type) for l in ours.layer] == [(l.name, l.type) for l in theirs.layer]


def test_load_caffe_bn_equals_fork_formula(seeded_attention56):
    from caffe2mx.mxmodels.caffe_bridge import load_caffe
    proto, path, blobs, _ = seeded_attention56
    model = get_model("attention56")
    model.initialize()
    loaded = load_caffe(model, proto, path)
    assert set(loaded) == set(blobs)
    rng = np.random.RandomState(1)
    folded = 0
    for name, block in loaded.items():
        if isinstance(block, nn.BatchNorm):
            scale, shift, mean, inv = (b.reshape(-1).astype(np.float64) for b in blobs[name])
            x = rng.normal(0, 2, (2, scale.size, 3, 3)).astype("float32")
            want = ((x - mean[:, None, None]) * (inv * scale)[:, None, None] + shift[:, None, None])
            got = block(mx.nd.array(x)).asnumpy()
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-5 * np.abs(want).max(),
                                       err_msg=name)
            folded += int((block.running_var.data().asnumpy() == 0).sum())
        elif isinstance(block, nn.Conv2D):
            np.testing.assert_array_equal(block.weight.data().asnumpy(), blobs[name][0])
        else:
            np.testing.assert_array_equal(block.weight.data().asnumpy(), blobs[name][0])
            np.testing.assert_array_equal(block.bias.data().asnumpy(), blobs[name][1])
    assert folded > 0, "no channel exercised the inverse std > 1/sqrt(eps) path"


def _small_unit_net(tmp_path, drop=(), extra=(), reshape=None):
    """A one-unit Gluon model and a matching prototxt/caffemodel, with optional damage."""
    from caffe2mx.converter.proto import caffe_pb
    unit = PreActBottleneck(16, 64, stride=2, name="pre_res_2", in_name="AttentionA_1")
    unit.initialize()
    names = [n for n, _ in caffe_layers(unit)]
    types, shapes = {}, {}
    for n, block in caffe_layers(unit):
        if isinstance(block, nn.BatchNorm):
            types[n], shapes[n] = "BN", [(1, block.gamma.shape[0], 1, 1)] * 4
        else:
            types[n], shapes[n] = "Convolution", [tuple(block.weight.shape)]
    blobs = _seeded_blobs(shapes)
    for name in extra:
        types[name] = "Convolution"
        blobs[name] = [np.zeros((4, 4, 1, 1), "float32")]
    if reshape:
        out_c, in_c, kh, kw = shapes[reshape][0]
        blobs[reshape] = [np.zeros((out_c, in_c + 1, kh, kw), "float32")]
    # a valid net (the bridge reads it as the converter does): each layer reads its own input
    net = caffe_pb.NetParameter(name="unit")
    for i, n in enumerate(x for x in names if x not in drop):
        channels = shapes[n][0][1]
        net.input.append(f"in{i}")
        net.input_shape.add(dim=[1, channels, 4, 4])
        layer = net.layer.add(name=n, type=types[n], bottom=[f"in{i}"], top=[f"out{i}"])
        if types[n] == "Convolution":
            out_c, _, kh, _ = shapes[n][0]
            layer.convolution_param.num_output = out_c
            layer.convolution_param.kernel_size.append(kh)
            layer.convolution_param.pad.append(kh // 2)
            layer.convolution_param.bias_term = False
    proto = tmp_path / "unit.prototxt"
    proto.write_text(str(net))
    model = tmp_path / "unit.caffemodel"
    write_test_caffemodel(model, {n: b for n, b in blobs.items() if n not in drop}, types)
    return unit, proto, model


def test_load_caffe_reports_missing_and_extra_layers(tmp_path):
    from caffe2mx.mxmodels.caffe_bridge import CaffeBridgeError, load_caffe
    unit, proto, model = _small_unit_net(tmp_path)
    load_caffe(unit, proto, model)

    unit, proto, model = _small_unit_net(tmp_path, drop=("pre_res_2/branch1/conv2_3x3",))
    with pytest.raises(CaffeBridgeError) as err:
        load_caffe(unit, proto, model)
    assert "Gluon layers without a Caffe layer (1):\n  pre_res_2/branch1/conv2_3x3" in str(err.value)

    unit, proto, model = _small_unit_net(tmp_path, extra=("AttentionB_9/mask/linear_1",))
    with pytest.raises(CaffeBridgeError) as err:
        load_caffe(unit, proto, model)
    assert "caffemodel layers the prototxt does not have (1):\n  AttentionB_9/mask/linear_1" in str(err.value)

    unit, proto, model = _small_unit_net(tmp_path, extra=("AttentionB_9/mask/linear_1",))
    with pytest.raises(CaffeBridgeError) as err:
        load_caffe(unit, None, model)
    assert "Caffe layers without a Gluon layer (1):\n  AttentionB_9/mask/linear_1" in str(err.value)

    unit, proto, model = _small_unit_net(tmp_path, reshape="pre_res_2/branch1/conv3_1x1")
    with pytest.raises(CaffeBridgeError) as err:
        load_caffe(unit, proto, model)
    assert "pre_res_2/branch1/conv3_1x1: blob shape" in str(err.value)


@pytest.mark.parametrize("name", ["attention56", "attentionnext56", "attention92", "attentionnext92"])
def test_gluon_equals_converted_symbol(name, tmp_path):
    """Gluon model loaded from an init-weights caffemodel == the converted MXNet symbol."""
    from caffe2mx import convert
    from caffe2mx.mxmodels.caffe_bridge import load_caffe
    from caffe2mx.seeding import write_init_weights
    proto = PROTOTXTS / f"{name}.prototxt"
    weights = tmp_path / f"{name}.caffemodel"
    write_init_weights(read_net(proto), str(weights), seed=3)
    conv = convert(str(proto), str(weights))
    logits = conv.symbol.get_internals()[conv.name_map["blobs"]["classifier"]]
    converted = gluon.SymbolBlock(logits, [mx.sym.var("data")])
    converted.collect_params().load_dict({**conv.arg_params, **conv.aux_params}, ignore_extra=True)
    x = mx.nd.array(np.random.RandomState(0).uniform(-1, 1, (1, 3, 224, 224)).astype("float32"))
    ref = converted(x).asnumpy()

    model = get_model(name)
    model.initialize()
    load_caffe(model, proto, weights)
    model.hybridize()
    got = model(x).asnumpy()
    # Both run MXNet's float32 kernels through CachedOp; each unit agrees to ~2e-7 given the
    # same input, and the differences grow with depth (~5e-6 for the 56s, ~2.5e-5 for
    # Attention-92). Past 1e-5 the float64 NumPy reference of Caffe's semantics decides:
    # the Gluon model must be no farther from it than the converted symbol is (within 2x).
    scale = np.abs(ref).max()
    if np.abs(got - ref).max() <= 1e-5 * scale:
        return
    from caffe2mx.verify.numpy_ref import forward
    exact = forward(conv.net.graph, {"data": x.asnumpy()}, dtype=np.float64).blobs["classifier"]
    gluon_err, symbol_err = np.abs(got - exact).max(), np.abs(ref - exact).max()
    assert gluon_err <= 2 * symbol_err and gluon_err <= 1e-4 * scale, (gluon_err, symbol_err, scale)


# --- insightface symbol ---------------------------------------------------------------

def test_face_symbol_loads_in_module():
    from caffe2mx.mxmodels.face_symbol import get_symbol
    sym = get_symbol(num_classes=512, num_layers=56)
    assert sym.list_outputs() == ["fc1_output"]
    mod = mx.mod.Module(sym, data_names=["data"], label_names=None)
    mod.bind(data_shapes=[("data", (1, 3, 112, 112))], for_training=False)
    mod.init_params(mx.init.Xavier())
    batch = mx.io.DataBatch([mx.nd.array(np.random.RandomState(0).uniform(0, 255, (1, 3, 112, 112)))])
    mod.forward(batch, is_train=False)
    out = mod.get_outputs()[0].asnumpy()
    assert out.shape == (1, 512) and np.isfinite(out).all()
    se = get_symbol(num_classes=128, num_layers=92, version_se=1)
    assert se.infer_shape(data=(1, 3, 112, 112))[1] == [(1, 128)]
    with pytest.raises(ValueError):
        get_symbol(num_layers=50)
