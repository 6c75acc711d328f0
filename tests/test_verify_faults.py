"""Planted conversion faults: verify must exit 1 and name the planted layer as the first divergence.

Each fault is planted in a saved conversion (symbol JSON or params edited, or converted
with the wrong BN option), then checked with `caffe2mx verify --model PREFIX`.
"""
import json

import numpy as np
import pytest

import caffe2mx
from caffe2mx.cli import main
from caffe2mx.converter.pipeline import save
from test_verify_nets import MINI_ATTENTION, write_net


def _edit_symbol(prefix, mx_op, edit):
    path = f"{prefix}-symbol.json"
    data = json.loads(open(path).read())
    hits = [n for n in data["nodes"] if n["name"] == mx_op]
    assert hits, f"no MXNet node {mx_op}"
    for n in hits:
        edit(n)
    open(path, "w").write(json.dumps(data))


def _mx_op(conv, layer):
    return conv.name_map["layers"][layer]["mxnet_op"]


def plant_bn_variance(tmp_path, net):
    """A converter that reads BN's 4th blob as a variance while its name map says inv_std."""
    conv = caffe2mx.convert(net, bn_blob3="variance")
    conv.name_map["options"]["bn_blob3"] = "inv_std"
    return conv, "conv1/bn"


def plant_pool_floor(tmp_path, net):
    conv = caffe2mx.convert(net)
    op = _mx_op(conv, "A/mask/pool")
    return conv, "A/mask/pool", (op, lambda n: n["attrs"].update(pooling_convention="valid"))


def plant_interp_half_pixel(tmp_path, net):
    conv = caffe2mx.convert(net)
    op = _mx_op(conv, "A/mask/interp")
    return conv, "A/mask/interp", (op, lambda n: n["attrs"].update(align_corners="False"))


def plant_prod_as_sum(tmp_path, net):
    conv = caffe2mx.convert(net)
    op = _mx_op(conv, "A/prod")

    def edit(n):
        assert n["op"] == "elemwise_mul"
        n["op"] = "elemwise_add"
    return conv, "A/prod", (op, edit)


def plant_conv_transposed(tmp_path, net):
    conv = caffe2mx.convert(net)
    (name,) = [p[4:] for p in conv.name_map["layers"]["A/trunk/conv"]["params"] if p.endswith("weight")]
    w = conv.arg_params[name]
    conv.arg_params[name] = w.transpose((0, 1, 3, 2)).copy()
    return conv, "A/trunk/conv"


FAULTS = {"bn_blob3_as_variance": plant_bn_variance, "pooling_floor": plant_pool_floor,
          "interp_no_align_corners": plant_interp_half_pixel, "eltwise_prod_as_sum": plant_prod_as_sum,
          "conv_weights_transposed": plant_conv_transposed}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_planted_fault_is_found_at_its_layer(tmp_path, capsys, fault):
    net = write_net(tmp_path, MINI_ATTENTION)
    planted = FAULTS[fault](tmp_path, net)
    conv, layer = planted[0], planted[1]
    prefix = tmp_path / "model"
    save(conv, prefix)
    if len(planted) == 3:
        _edit_symbol(prefix, *planted[2])
    rc = main(["verify", str(net), "--model", str(prefix), "--reference", "numpy", "-q"])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert f"first divergence: layer '{layer}'" in out, out
    assert "its conversion is wrong" in out, out


def test_planted_fault_in_report_json(tmp_path, capsys):
    from caffe2mx.verify.report import write_report
    from caffe2mx.verification import verify
    net = write_net(tmp_path, MINI_ATTENTION)
    conv, layer = plant_conv_transposed(tmp_path, net)
    save(conv, tmp_path / "model")
    run = verify(net, model=str(tmp_path / "model"))
    paths = write_report(run, tmp_path / "report")
    data = json.loads(open(paths["json"]).read())
    assert not data["passed"]
    first = data["first_divergence"]
    assert first["layer"] == layer and first["status"] == "diverges"
    assert all(i["status"] == "pass" for i in first["input_rows"]) and first["input_rows"]
    statuses = [r["status"] for r in data["rows"]]
    assert "inherited" in statuses[statuses.index("diverges") + 1:]
    assert paths["arrays"], "failing blobs' arrays are written"
    with np.load(tmp_path / "report" / paths["arrays"][0]) as z:
        assert set(z.files) >= {"actual", "reference", "abs_diff"}


def test_tolerance_options(tmp_path, capsys):
    net = write_net(tmp_path, MINI_ATTENTION)
    conv, layer = plant_conv_transposed(tmp_path, net)
    save(conv, tmp_path / "model")
    base = ["verify", str(net), "--model", str(tmp_path / "model"), "-q"]
    assert main(base) == 1
    assert main(base + ["--rtol", "1e9"]) == 0
    assert main(base + ["--type-rtol", "nonsense"]) == 2
    assert main(base + ["--type-rtol", "Convolution=abc"]) == 2
    capsys.readouterr()
    assert main(base + ["--all"]) == 1
    assert capsys.readouterr().out.count("\n") > 18


def test_a_model_that_cannot_run_is_a_parity_failure(tmp_path, capsys):
    net = write_net(tmp_path, MINI_ATTENTION)
    conv = caffe2mx.convert(net)
    save(conv, tmp_path / "model")
    data = json.loads(open(f"{tmp_path / 'model'}-symbol.json").read())
    names = [n["name"] for n in data["nodes"]]
    pool = names.index(_mx_op(conv, "A/mask/pool"))
    _edit_symbol(tmp_path / "model", _mx_op(conv, "A/fusion"),
                 lambda n: n.update(op="elemwise_add", attrs={}, inputs=[[pool, 0, 0], n["inputs"][1]]))
    assert main(["verify", str(net), "--model", str(tmp_path / "model"), "-q"]) == 1
    assert "MXNet could not run the converted model" in capsys.readouterr().err
