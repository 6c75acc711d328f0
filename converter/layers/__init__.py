"""Layer handlers, one per Caffe type, one module per layer family.

Importing this package imports every family module in it, which registers the handlers:
adding a layer type never touches this file.
"""
import importlib
import pkgutil

from .base import LayerHandler, all_handlers, handler_for, is_internal, register, supported_types  # noqa: F401


def _load_families():
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name != "base" and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def family_of(type_):
    """The family module name (e.g. 'conv') a type's handler lives in."""
    h = handler_for(type_)
    return None if h is None else type(h).__module__.rsplit(".", 1)[-1]


_load_families()
