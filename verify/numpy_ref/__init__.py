"""Independent NumPy implementation of Caffe's TEST-phase forward pass.

Written from Caffe's documented semantics and /work/shared facts, never from the MXNet
emission, so that it can serve as the oracle for the converter. Importing this package
fills the registry with one module per layer family.
"""
from . import activations, affine, conv, eltwise, interp, norm, pooling, shape_ops  # noqa: F401
from .forward import Result, check_supported, forward
from .registry import UnsupportedLayerType, register, supported_types
from .splits import input_writers_from_net, split_names

__all__ = ["Result", "UnsupportedLayerType", "check_supported", "forward", "input_writers_from_net",
           "register", "split_names", "supported_types"]
