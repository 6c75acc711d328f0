"""Model registry: `@register_model(...)` on a factory, `get_model(name)`, `list_models(pattern)`,
and each model's default configuration, `model_config(name)`.

The configuration is what a caller needs without building the model: the square input side
the model is built for, the width of its output (classes, or the embedding size of a face
model) and its kind, plus the per-channel mean and standard deviation (0..255 pixel scale) that
its data pipeline subtracts and divides by. The output width and kind come from the factory's
own keyword defaults (`classes=`, or `emb_size=` for an embedding model), so they are stated
once; the input side and normalisation are given to the decorator.
"""
import difflib
import fnmatch
import importlib
import inspect
import sys
from dataclasses import dataclass

_MODELS = {}
_CONFIGS = {}
#: the modules whose import registers the zoo (see _load_zoo)
ZOO_MODULES = ("attention", "cru_net", "aff", "atac")


def _load_zoo():
    """Import the zoo's modules once, MXNet first without what it does not need (mxnet_import)."""
    if all(f"{__package__}.{m}" in sys.modules for m in ZOO_MODULES):
        return
    from caffe2mx.converter.mxnet_import import import_mxnet
    import_mxnet()
    for module in ZOO_MODULES:
        importlib.import_module(f"{__package__}.{module}")

IMAGENET_MEAN = (123.68, 116.779, 103.939)
IMAGENET_STD = (58.393, 57.12, 57.375)
CIFAR_MEAN = (125.307, 122.961, 113.8575)     # 255 * (0.4914, 0.4822, 0.4465)
CIFAR_STD = (51.5865, 50.847, 51.255)         # 255 * (0.2023, 0.1994, 0.2010)
FACE_MEAN = (127.5, 127.5, 127.5)             # insightface: (x - 127.5) * 0.0078125
FACE_STD = (128.0, 128.0, 128.0)

# Decorator presets: @register_model(**CIFAR)
IMAGENET = dict(input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD)
CIFAR = dict(input_size=32, mean=CIFAR_MEAN, std=CIFAR_STD)
FACE = dict(input_size=112, mean=FACE_MEAN, std=FACE_STD)
FACE_RAW = dict(input_size=112, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # normalises 0..255 itself


@dataclass(frozen=True)
class ModelConfig:
    """Defaults of one registered model (see the module docstring)."""
    name: str
    input_size: int
    classes: int
    kind: str                 # 'classifier' or 'embedding'
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD

    @property
    def input_shape(self):
        """(1, 3, side, side): one image at the native size."""
        return (1, 3, self.input_size, self.input_size)


def _output_default(fn):
    params = inspect.signature(fn).parameters
    for key, kind in (("classes", "classifier"), ("emb_size", "embedding")):
        if key in params and params[key].default is not inspect.Parameter.empty:
            return params[key].default, kind
    raise ValueError(f"model factory '{fn.__name__}' needs a `classes=` or `emb_size=` keyword default")


def register_model(fn=None, *, input_size=None, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Register a factory under its function name; registering a name twice is an error.

    `@register_model(input_size=224)` also records the model's default config; a bare
    `@register_model` registers without one (model_config then says so).
    """
    def wrap(factory):
        name = factory.__name__
        if name in _MODELS:
            raise ValueError(f"model '{name}' is registered twice")
        _MODELS[name] = factory
        if input_size is not None:
            classes, kind = _output_default(factory)
            _CONFIGS[name] = ModelConfig(name, int(input_size), int(classes), kind, tuple(mean), tuple(std))
        return factory
    return wrap(fn) if fn is not None else wrap


def list_models(pattern="*"):
    _load_zoo()
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def _unknown(name):
    _load_zoo()
    close = difflib.get_close_matches(name, _MODELS, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return ValueError(f"unknown model '{name}'.{hint} Valid names: {', '.join(list_models())}")


def model_config(name):
    """The ModelConfig of a registered model (input side, output width, kind, normalisation)."""
    _load_zoo()
    if name not in _MODELS:
        raise _unknown(name)
    try:
        return _CONFIGS[name]
    except KeyError:
        raise ValueError(f"model '{name}' was registered without a default config: give "
                         f"@register_model(input_size=...) in its module") from None


def get_model(name, pretrained=None, ctx=None, root=None, **kwargs):
    """Build the registered model `name`; `kwargs` go to its factory (e.g. `classes=`).

    The keywords GluonCV users pass by habit are accepted: `pretrained` must be false or None
    (nothing is downloaded; convert Caffe weights and load them with
    `caffe_bridge.load_caffe`, or train with `caffe2mx train`); `ctx` (a Context or a list)
    initialises the parameters there with MXNet's default initializer; `root` (GluonCV's
    download folder) is accepted and unused.
    """
    _load_zoo()
    if name not in _MODELS:
        raise _unknown(name)
    if pretrained:
        raise ValueError(f"get_model('{name}', pretrained={pretrained!r}): caffe2mx ships no "
                         "pretrained weights and downloads nothing. Convert a Caffe model "
                         "(`caffe2mx convert NET.prototxt NET.caffemodel --to-gluon "
                         f"{name}`) or load one with caffe2mx.mxmodels.caffe_bridge.load_caffe.")
    del root
    net = _MODELS[name](**kwargs)
    if ctx is not None:
        net.initialize(ctx=ctx)
    return net
