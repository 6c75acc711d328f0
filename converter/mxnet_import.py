"""Import MXNet without the scientific stack it does not need here.

MXNet 1.9.1 imports scikit-learn when it loads (`mxnet.model`, only to derive its deprecated
FeedForward from sklearn's BaseEstimator) and scipy.sparse (only to accept scipy matrices in
`mx.nd.sparse`). With both installed that is about 0.7-1 s of every command's start-up, as
much as a small conversion. Neither is used by caffe2mx through MXNet, so while MXNet loads
they are marked absent (MXNet's own `except ImportError` fallbacks apply), then made
importable again for whoever needs them later (the demo imports scikit-learn itself).
Where either is already imported, nothing is hidden.
"""
import sys

from .errors import ModelError

#: packages MXNet imports only for features caffe2mx does not use
NOT_NEEDED = ("sklearn", "scipy")


def import_mxnet():
    """The `mxnet` module, imported once (see the module docstring); a ModelError if it is not installed."""
    mx = sys.modules.get("mxnet")
    if mx is not None:
        return mx
    hidden = [name for name in NOT_NEEDED if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # `import name` raises ImportError while this stands
    try:
        import mxnet
    except ImportError:  # pragma: no cover - depends on the install
        raise ModelError("MXNet is not installed: pip install 'caffe2mx[cpu]' (or [gpu])") from None
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return mxnet
