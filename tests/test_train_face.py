"""Face training pieces: stable symbol names, a checkpoint of a symbol built the way the seed
authors' fresattnet.py builds the modified Attention-56 loads into the zoo model through the
name map (same outputs), and 10-fold verification on .bin pairs."""
import mxnet as mx
import numpy as np
import pytest

from caffe2mx.mxmodels import get_model
from caffe2mx.mxmodels.face_symbol import get_symbol
from caffe2mx.mxmodels.training.insightface import load_seed_checkpoint
from caffe2mx.mxmodels.training.verification import evaluate, load_bin, write_bin


@pytest.mark.parametrize("kw", [dict(num_layers=56), dict(num_layers=116, family="cru_net")])
def test_face_symbol_names_are_stable(kw):
    first, second = get_symbol(**kw), get_symbol(**kw)
    assert first.list_arguments() == second.list_arguments()
    assert first.list_auxiliary_states() == second.list_auxiliary_states()


# --- a symbol with fresattnet.py's structure and names (written here from its description:
# BN '<n>_batchnorm' with MXNet's default eps, PReLU '<n>_prelu', conv '<n>_conv2d') ---------

def _bn(x, n, eps=1e-3, fix_gamma=False):
    return mx.sym.BatchNorm(x, name=f"{n}_batchnorm" if eps == 1e-3 else n, fix_gamma=fix_gamma,
                            momentum=0.9, eps=eps)


def _act(x, n):
    return mx.sym.LeakyReLU(x, act_type="prelu", name=f"{n}_prelu")


def _conv(x, c, n, k=1, s=1):
    return mx.sym.Convolution(x, num_filter=c, kernel=(k, k), stride=(s, s), pad=(k // 2, k // 2),
                              no_bias=True, name=f"{n}_conv2d")


def _unit(x, c, n, stride=1, match=True):
    b = _conv(_bn(x, f"{n}_c1x1"), c // 4, f"{n}_c1x1_a")
    b = _conv(_act(_bn(b, f"{n}_c3x3"), f"{n}_c3x3"), c // 4, f"{n}_c3x3", 3)
    b = _conv(_act(_bn(b, f"{n}_c1x1_b"), f"{n}_c1x1_b"), c, f"{n}_c1x1_b", 1, stride)
    b = _bn(b, f"{n}_bn_c1x1_b")
    sc = x if match else _bn(_conv(x, c, f"{n}_conv1sc", 1, stride), f"{n}_bn_sc")
    return b + sc


def _pool(x):
    return mx.sym.Pooling(x, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max")


def _up(x, size):
    return mx.sym.contrib.BilinearResize2D(x, height=size, width=size)


def _module(x, c, n, stage, size):
    first = _unit(x, c, f"{n}_rb_first")
    trunk = _unit(_unit(first, c, f"{n}_tk_rb_1"), c, f"{n}_tk_rb_2")
    if stage == 1:
        d1 = _unit(_pool(first), c, f"{n}_sm_rb_1")
        s1 = _unit(d1, c, f"{n}_sk_cn_rb_1")
        d2 = _unit(_pool(d1), c, f"{n}_sm_rb_2")
        s2 = _unit(d2, c, f"{n}_sk_cn_rb_2")
        d3 = _unit(_unit(_pool(d2), c, f"{n}_sm_rb_3_1"), c, f"{n}_sm_rb_3_2")
        u = _unit(_up(d3, size // 4) + d2 + s2, c, f"{n}_sm_rb_4")
        u = _unit(_up(u, size // 2) + d1 + s1, c, f"{n}_sm_rb_5")
    elif stage == 2:
        d1 = _unit(_pool(first), c, f"{n}_sm_rb_1")
        s1 = _unit(d1, c, f"{n}_sk_cn_rb_1")
        d2 = _unit(_unit(_pool(d1), c, f"{n}_sm_rb_2_1"), c, f"{n}_sm_rb_2_2")
        u = _unit(_up(d2, size // 2) + d1 + s1, c, f"{n}_sm_rb_3")
    else:
        u = _unit(_unit(_pool(first), c, f"{n}_sm_rb_1_1"), c, f"{n}_sm_rb_1_2")
    m = _up(u, size) + trunk
    m = _conv(_act(_bn(m, f"{n}_sm_c1x1_a"), f"{n}_sm_c1x1_a"), c, f"{n}_sm_c1x1_a")
    m = _conv(_act(_bn(m, f"{n}_sm_c1x1_b"), f"{n}_sm_c1x1_b"), c, f"{n}_sm_c1x1_b")
    att = trunk + trunk * mx.sym.sigmoid(m)
    return _unit(att, c, f"{n}_RB_last" if stage == 1 else f"{n}_rb_last")


def fresattnet56(widths, emb):
    x = (mx.sym.var("data") - 127.5) * 0.0078125
    x = _act(_bn(_conv(x, 64, "RA_conv1", 3), "RA_conv1_bn1"), "RA_conv1_bn1")
    size = 56
    for s, c in enumerate(widths[:3], start=1):
        x = _unit(x, c, f"RAN_R_unit{s}", 2, False)
        x = _module(x, c, f"RAN_AM_s{s}_unit1", s, size)
        size //= 2
    x = _unit(x, widths[3], "RAN_R_unit4_1", 2, False)
    x = _unit(_unit(x, widths[3], "RAN_R_unit4_2"), widths[3], "RAN_R_unit4_3")
    x = mx.sym.BatchNorm(x, name="bn1", eps=2e-5, momentum=0.9, fix_gamma=False)
    x = mx.sym.Dropout(x, p=0.4)
    x = mx.sym.FullyConnected(x, num_hidden=emb, name="pre_fc1")
    return mx.sym.BatchNorm(x, name="fc1", eps=2e-5, momentum=0.9, fix_gamma=True)


def test_seed_checkpoint_loads_into_zoo_model(tmp_path):
    """A checkpoint saved from the seed-structured symbol (reduced widths so the test is
    small; the names do not depend on them) gives the zoo model the same embeddings."""
    from caffe2mx.mxmodels.blocks.heads import EmbeddingHead
    widths, emb = (32, 64, 128, 256), 16
    sym = fresattnet56(widths, emb)
    rng = np.random.RandomState(0)
    shapes = dict(zip(sym.list_arguments(), sym.infer_shape(data=(2, 3, 112, 112))[0]))
    aux_shapes = dict(zip(sym.list_auxiliary_states(), sym.infer_shape(data=(2, 3, 112, 112))[2]))
    args = {k: mx.nd.array(rng.normal(0, 0.1, s) + (1 if k.endswith("gamma") else 0))
            for k, s in shapes.items() if k != "data"}
    auxs = {k: mx.nd.array(rng.uniform(0.5, 1.5, s) if k.endswith("var") else rng.normal(0, 0.1, s))
            for k, s in aux_shapes.items()}
    args["fc7_weight"] = mx.nd.zeros((5, emb))      # the margin weight insightface also saves
    mx.model.save_checkpoint(str(tmp_path / "seed"), 3, sym, args, auxs)

    x = rng.uniform(0, 255, (2, 3, 112, 112)).astype("float32")
    seed_args = {k: v for k, v in args.items() if k in shapes}
    exe = sym.bind(mx.cpu(), {"data": mx.nd.array(x), **seed_args}, aux_states=auxs, grad_req="null")
    ref = exe.forward(is_train=False)[0].asnumpy()

    net = get_model("face_attention56", emb_size=emb, widths=widths,
                    head=EmbeddingHead(emb, in_channels=widths[-1]))
    names = load_seed_checkpoint(net, tmp_path / "seed-0003.params")
    assert len(names) == len(list(net.collect_params().keys())) == len(seed_args) + len(auxs)
    got = net(mx.nd.array((x - 127.5) * 0.0078125)).asnumpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_seed_checkpoint_of_another_net_is_refused(tmp_path):
    from caffe2mx.converter.errors import UsageError
    mx.nd.save(str(tmp_path / "other-0001.params"), {"arg:conv0_weight": mx.nd.zeros((1,))})
    with pytest.raises(UsageError, match="missing"):
        load_seed_checkpoint(get_model("face_attention56"), tmp_path / "other-0001.params")


# --- verification ---------------------------------------------------------------------------

def test_ten_fold_verification_known_accuracy():
    """200 pairs: same pairs at squared distance ~0.5 except 10 at ~3.4, different pairs at
    ~2: any threshold between separates all but the 10, so every fold's best threshold gives
    190/200 overall, i.e. a mean of 0.95 over ten equal folds."""
    rng = np.random.RandomState(0)
    n = 200
    issame = np.zeros(n, bool)
    issame[::2] = True
    emb = np.zeros((2 * n, 3))
    hard = np.flatnonzero(issame)[::10]
    for i in range(n):
        a = rng.normal(size=3)
        a /= np.linalg.norm(a)
        # angle between the pair: squared chord 2 - 2cos
        angle = (0.72 if issame[i] else np.pi / 2) if i not in hard else 2.3
        b = np.cross(a, rng.normal(size=3))
        b /= np.linalg.norm(b)
        emb[2 * i], emb[2 * i + 1] = a, a * np.cos(angle) + b * np.sin(angle)
    acc, std, thr = evaluate(emb, issame)
    assert acc == pytest.approx(0.95) and 0.496 < thr <= 2.0   # between the two distances


def test_bin_round_trip(tmp_path):
    images = np.random.RandomState(1).randint(0, 256, (4, 3, 112, 112)).astype(np.uint8)
    write_bin(tmp_path / "pairs.bin", images, [True, False])
    back, issame = load_bin(tmp_path / "pairs.bin")
    np.testing.assert_array_equal(back, images)
    assert issame.tolist() == [True, False]


# --- a face run end to end on a tiny insightface folder ------------------------------------

def _face_folder(root, n_train=60, n_pairs=10):
    """insightface layout from the digits (identity = digit): train.rec/.idx with the index
    header record 0, `property`, and a .bin of verification pairs."""
    from io import BytesIO

    from PIL import Image
    from sklearn.datasets import load_digits

    from caffe2mx.mxmodels.training.data import _resize_uint8
    d = load_digits()
    gray = np.rint(d.images * (255 / 16)).astype(np.uint8)[:, None]
    images = _resize_uint8(np.repeat(gray, 3, axis=1), 112)
    root.mkdir()
    rec = mx.recordio.MXIndexedRecordIO(str(root / "train.idx"), str(root / "train.rec"), "w")
    rec.write_idx(0, mx.recordio.pack(mx.recordio.IRHeader(2, [n_train + 1, n_train + 11], 0, 0), b""))
    for i in range(n_train):
        buf = BytesIO()
        Image.fromarray(images[i].transpose(1, 2, 0)).save(buf, format="PNG")
        rec.write_idx(i + 1, mx.recordio.pack(mx.recordio.IRHeader(0, float(d.target[i]), i + 1, 0),
                                              buf.getvalue()))
    rec.close()
    (root / "property").write_text("10,112,112")
    va = images[n_train:n_train + 2 * n_pairs]
    vy = d.target[n_train:n_train + 2 * n_pairs]
    write_bin(root / "digits_pairs.bin", va, vy[0::2] == vy[1::2])


def test_face_training_run_writes_insightface_checkpoints(tmp_path):
    from caffe2mx import train
    _face_folder(tmp_path / "faces")
    out = tmp_path / "run"
    rows = train(model="face_attention56", data=str(tmp_path / "faces"), out=out, epochs=2,
                 batch_size=20, lr=0.01, model_kwargs={"emb_size": 16, "widths": [8, 16, 32, 64],
                                                        "stem_width": 8}, quiet=True)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(0 <= r["val_acc"] <= 1 and "val_digits_pairs" in r for r in rows)
    sym, args, auxs = mx.model.load_checkpoint(str(out / "model"), 2)
    assert "fc7_weight" in args and args["fc7_weight"].shape == (10, 16)
    fc1 = sym.get_internals()["fc1_output"]
    mod = mx.mod.Module(fc1, data_names=["data"], label_names=None)
    mod.bind(data_shapes=[("data", (2, 3, 112, 112))], for_training=False)
    mod.set_params(args, auxs, allow_extra=True)
    x = np.random.RandomState(0).uniform(0, 255, (2, 3, 112, 112)).astype("float32")
    mod.forward(mx.io.DataBatch([mx.nd.array(x)]), is_train=False)
    emb = mod.get_outputs()[0].asnumpy()
    assert emb.shape == (2, 16) and np.isfinite(emb).all()
    # the same embedding as the Gluon symbol block on normalised pixels
    net = mx.gluon.SymbolBlock(fc1, [mx.sym.var("data")])
    for name, param in net.collect_params().items():
        param._load_init(args[name] if name in args else auxs[name], mx.cpu())
    np.testing.assert_allclose(net(mx.nd.array(x)).asnumpy(), emb, rtol=1e-4, atol=1e-5 * np.abs(emb).max())


# --- the same for fcrunet.py's modified CRU-Net: names and shapes, by shape inference ------

def _fcrunet_resnext(x, c, n, first):
    b = _conv(_bn(x, f"{n}_c1x1-a"), c // 2, f"{n}_c1x1-a")
    b = mx.sym.Convolution(_act(_bn(b, f"{n}_c3x3-b"), f"{n}_c3x3-b"), num_filter=c // 2, kernel=(3, 3),
                           pad=(1, 1), num_group=32, no_bias=True, name=f"{n}_c3x3-b_conv2d")
    b = _conv(_act(_bn(b, f"{n}_c1x1-c"), f"{n}_c1x1-c"), c, f"{n}_c1x1-c", 1, 2 if first else 1)
    b = _bn(b, f"{n}_bn-c1x1-c")
    sc = _bn(_conv(x, c, f"{n}_c1x1-w(s/2)", 1, 2), f"{n}_bn-c1x1-w(s/2)") if first else x
    return b + sc


def _fcrunet_cru(x, c, r, n, bases, first):
    w1 = mx.sym.var(f"{bases}_1x1_bases[dim3]_weight")
    w3 = mx.sym.var(f"{bases}_3x3_bases[dim21]_weight")
    if first:
        sc = _bn(_conv(x, c, f"{n}_c1x1-w(s/key)", 1, 2), f"{n}_bn-c1x1-w(s/key)")
        x = _bn(_conv(x, c, f"{n}_c1x1-w(s/1)"), f"{n}_bn-c1x1-w(s/1)")
    else:
        sc = x
    b = mx.sym.Convolution(_act(_bn(x, f"{n}_c1x1-a"), f"{n}_c1x1-a"), weight=w1, num_filter=r,
                           kernel=(1, 1), no_bias=True, name=f"{n}_c1x1-a_conv2d")
    b = mx.sym.Convolution(_act(_bn(b, f"{n}_c3x3-b(1)"), f"{n}_c3x3-b(1)"), weight=w3, num_filter=r,
                           kernel=(3, 3), pad=(1, 1), num_group=r, no_bias=True, name=f"{n}_c3x3-b(1)_conv2d")
    b = _conv(_act(_bn(b, f"{n}_c1x1-b"), f"{n}_c1x1-b"), r, f"{n}_c1x1-b")
    b = _conv(_act(_bn(b, f"{n}_c1x1-c"), f"{n}_c1x1-c"), c, f"{n}_c1x1-c", 1, 2 if first else 1)
    return _bn(b, f"{n}_bn-c1x1-c") + sc


def fcrunet(units, k_d, emb):
    x = (mx.sym.var("data") - 127.5) * 0.0078125
    x = _act(_bn(_conv(x, 64, "conv1", 3), "conv1-bn1"), "conv1-bn1")
    for i in range(units[0]):
        x = _fcrunet_resnext(x, 256, f"conv2_x_{i + 1}", i == 0)
    for i in range(units[1]):
        x = _fcrunet_cru(x, 512, 2 * k_d, f"conv3_x_{i + 1}", "conv3_x", i == 0)
    for i in range(units[2]):
        x = _fcrunet_cru(x, 1024, 4 * k_d, f"conv4_x_{i + 1}", f"conv4_x_{i // 6 + 1}", i == 0)
    for i in range(units[3]):
        x = _fcrunet_resnext(x, 2048, f"conv5_x_{i + 1}", i == 0)
    x = mx.sym.BatchNorm(x, name="bn1", eps=2e-5, fix_gamma=False)
    x = mx.sym.FullyConnected(mx.sym.Dropout(x, p=0.4), num_hidden=emb, name="pre_fc1")
    return mx.sym.BatchNorm(x, name="fc1", eps=2e-5, fix_gamma=True)


@pytest.mark.parametrize("depth, units, k_d", [(56, (3, 4, 6, 3), 320), (116, (3, 6, 18, 3), 176)])
def test_cru_net_seed_names_and_shapes(depth, units, k_d):
    from caffe2mx.mxmodels.training.insightface import seed_names
    seed = fcrunet(units, k_d, 512)
    arg, _, aux = seed.infer_shape(data=(1, 3, 112, 112))
    seed_shapes = dict(zip(seed.list_arguments(), arg))
    seed_shapes.update(zip(seed.list_auxiliary_states(), aux))
    seed_shapes.pop("data")
    net = get_model(f"face_cru_net{depth}")
    zoo = net(mx.sym.var("data"))
    arg, _, aux = zoo.infer_shape(data=(1, 3, 112, 112))
    zoo_shapes = dict(zip(zoo.list_arguments(), arg))
    zoo_shapes.update(zip(zoo.list_auxiliary_states(), aux))
    names = seed_names(net)
    assert sorted(names.values()) == sorted(seed_shapes)        # one to one, nothing left over
    for zoo_name, seed_name in names.items():
        assert zoo_shapes[zoo_name] == seed_shapes[seed_name], (zoo_name, seed_name)
