"""insightface-compatible symbol for the face Residual Attention Networks.

`get_symbol(num_classes, num_layers, **kwargs)` follows insightface's `symbol_*.py`
convention: the symbol takes raw 0..255 pixels named `data` (112x112), normalizes them as
(x - 127.5) * 0.0078125, and ends in the Option-E embedding named `fc1`, so
`mx.mod.Module(sym, data_names=['data'], label_names=None)` and insightface's training
scripts (which append their margin loss to `fc1`) can use it as is.
"""
import mxnet as mx

from .registry import get_model

FACE_LAYERS = (56, 92)
# insightface config keys that this symbol either honours or does not depend on
_INSIGHTFACE_KEYS = ("version_input", "version_unit", "version_act", "version_multiplier",
                     "width_mult", "bn_mom", "workspace", "memonger")


def get_symbol(num_classes=512, num_layers=56, use_se=None, version_se=0, version_output="E",
               **kwargs):
    """Symbol of face_attention{num_layers} with a `num_classes`-d embedding output `fc1`.

    SE is off unless `use_se=True` or insightface's `version_se=1` (the bruinxiong symbol
    defaults it on; insightface's train_softmax passes 0). Only output 'E' is provided.
    """
    if num_layers not in FACE_LAYERS:
        raise ValueError(f"num_layers must be one of {FACE_LAYERS}, got {num_layers}")
    if str(version_output).upper() != "E":
        raise ValueError(f"only the Option-E embedding is provided, got version_output={version_output!r}")
    unknown = sorted(set(kwargs) - set(_INSIGHTFACE_KEYS))
    if unknown:
        raise TypeError(f"unexpected arguments {unknown}; insightface keys accepted: "
                        f"{', '.join(_INSIGHTFACE_KEYS)}")
    se = bool(version_se) if use_se is None else bool(use_se)
    net = get_model(f"face_attention{num_layers}", emb_size=num_classes, use_se=se)
    data = mx.sym.var("data")
    body = (data - 127.5) * 0.0078125
    return mx.sym.identity(net(body), name="fc1")
