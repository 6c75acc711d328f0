"""Hand-written Gluon reproductions of the architectures caffe2mx converts."""
from .registry import get_model, list_models, model_config, register_model  # noqa: F401
from . import attention  # noqa: F401,E402  (registers the Residual Attention Networks)
from . import cru_net, aff, atac  # noqa: F401,E402  (register CRU-Net, AFF/iAFF, ATAC)
