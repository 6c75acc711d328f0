"""Layer handlers, one per Caffe type; importing this package registers them all."""
from . import activations, batchnorm, conv, eltwise, interp, pooling, shape_ops  # noqa: F401
from .base import LayerHandler, handler_for, register, supported_types  # noqa: F401
