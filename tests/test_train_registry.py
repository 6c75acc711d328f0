"""The zoo's per-model default config and GluonCV-style get_model keywords."""
import mxnet as mx
import pytest

from caffe2mx.commands.inspect import native_input_shape
from caffe2mx.mxmodels import get_model, list_models, model_config


@pytest.mark.parametrize("name", list_models())
def test_every_model_has_a_config_matching_its_factory(name):
    cfg = model_config(name)
    assert cfg.input_size in (32, 112, 224) and cfg.kind in ("classifier", "embedding")
    assert native_input_shape(name) == (1, 3, cfg.input_size, cfg.input_size)
    # the side agrees with the family the docs give (CIFAR 32, face 112, ImageNet 224)
    family = 32 if name.startswith(("cifar_", "slim_")) else 112 if name.startswith("face_") else 224
    assert cfg.input_size == family
    assert (cfg.kind == "embedding") == name.startswith("face_")


def test_config_output_width_is_the_models():
    net = get_model("slim_attention56", ctx=mx.cpu())
    assert net(mx.nd.zeros(model_config("slim_attention56").input_shape)).shape == (1, 10)
    assert model_config("cru_net56").classes == 1000 and model_config("face_cru_net116").classes == 512


def test_gluoncv_keywords():
    net = get_model("slim_attention56", pretrained=False, ctx=mx.cpu(), root="~/.mxnet/models", classes=3)
    assert all(p._data is not None for p in net.collect_params().values())
    assert net(mx.nd.zeros((2, 3, 32, 32))).shape == (2, 3)
    with pytest.raises(ValueError, match="ships no pretrained weights"):
        get_model("slim_attention56", pretrained=True)
    with pytest.raises(ValueError, match="Did you mean: attention56.*Valid names: .*cru_net116"):
        get_model("attention65")
