"""Independent NumPy implementation of Caffe's TEST-phase forward pass.

Written from Caffe's documented semantics and /work/shared facts, never from the MXNet
emission, so that it can serve as the oracle for the converter. Importing this package
imports every layer-family module in it (the same family file names as
`converter/layers/`), which fills the registry: adding a type never touches this file.
"""
import importlib
import pkgutil

from caffe2mx.converter import plugins as _plugins

from . import registry as _registry
from .registry import UnsupportedLayerType, register, supported_types, family_of  # noqa: F401

_NOT_FAMILIES = {"registry", "call", "forward", "splits"}


def _load_families():
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name not in _NOT_FAMILIES and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_load_families()
# a plug-in must register a NumPy reference for each layer type it adds (and for no other)
_plugins.add_layer_registry("NumPy reference", _registry._HANDLERS)

from .forward import Result, check_supported, forward  # noqa: E402
from .splits import split_names  # noqa: E402

__all__ = ["Result", "UnsupportedLayerType", "check_supported", "forward",
           "register", "split_names", "supported_types", "family_of"]
