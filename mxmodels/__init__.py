"""Hand-written Gluon reproductions of the architectures caffe2mx converts.

The zoo's modules (attention, cru_net, aff, atac) register their models when imported; the
registry imports them on first use (they import Gluon, seconds a command may not need).
"""
from .registry import get_model, list_models, model_config, register_model  # noqa: F401
