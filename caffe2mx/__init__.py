"""caffe2mx: reproduce Caffe networks in Apache MXNet and prove the numbers did not change.

API: `caffe2mx.convert`, `caffe2mx.optimize`, `caffe2mx.load`, `caffe2mx.verify`, `caffe2mx.export_onnx`,
`caffe2mx.inspect`, and `caffe2mx.load_plugin` / `caffe2mx.load_proto` for your own layer
types (see caffe2mx.api).
"""
import os as _os

from .converter.version import VERSION as __version__  # noqa: E402

_os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")

from . import api as _api  # noqa: E402
from . import verify as _verify_package  # noqa: E402
from .api import (Conversion, Net, convert, export_onnx, inspect, load, load_plugin, load_proto,  # noqa: E402,F401
                  optimize, read_net)


class _CallableVerify(type(_verify_package)):
    """`caffe2mx.verify` is both the package (caffe2mx.verify.metrics, ...) and the API call
    `caffe2mx.verify(prototxt, ...)`: the package name is fixed by the layout, and a plain
    function of that name would be replaced by the package whenever a submodule is imported."""

    def __call__(self, *args, **kwargs):
        return _api.verify(*args, **kwargs)


_verify_package.__class__ = _CallableVerify
verify = _verify_package


def __getattr__(name):
    """`caffe2mx.train`, loaded on first use: the training package imports MXNet's Gluon and the
    zoo, seconds that converting, verifying or a bad-input error should not pay."""
    if name == "train":
        from .mxmodels.training import train
        return train
    raise AttributeError(f"module 'caffe2mx' has no attribute {name!r}")
