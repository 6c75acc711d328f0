"""insightface-compatible symbols for the face Residual Attention Networks and face CRU-Nets.

`get_symbol(num_classes, num_layers, **kwargs)` follows insightface's `symbol_*.py`
convention: the symbol takes raw 0..255 pixels named `data` (112x112), normalizes them as
(x - 127.5) * 0.0078125, and ends in the Option-E embedding named `fc1`, so
`mx.mod.Module(sym, data_names=['data'], label_names=None)` and insightface's training
scripts (which append their margin loss to `fc1`) can use it as is.

Parameter names are the same on every call in a process (the Gluon blocks get fixed
prefixes, `face_attention56_...`, `face_cru_net116_...`, and the head `head_...`), so a
checkpoint saved from one call loads into a symbol built by another.
"""
import mxnet as mx

from .registry import get_model

FAMILIES = {"attention": (56, 92), "cru_net": (56, 116)}
# insightface config keys that these symbols either honour or do not depend on
_INSIGHTFACE_KEYS = ("version_input", "version_unit", "version_act", "version_multiplier",
                     "width_mult", "bn_mom", "workspace", "memonger")


def face_network(num_layers=56, family="attention", emb_size=512, use_se=False):
    """The Gluon face model with fixed parameter names (see the module docstring). Its input is
    what the symbol feeds it: normalized pixels for the attention nets, raw 0..255 for the
    CRU-Nets (which normalize inside)."""
    from .blocks.heads import EmbeddingHead
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")
    if num_layers not in FAMILIES[family]:
        raise ValueError(f"num_layers must be one of {FAMILIES[family]} for {family}, got {num_layers}")
    name = f"face_{family}{num_layers}"
    if family == "cru_net":
        if use_se:
            raise ValueError("the face CRU-Nets have no squeeze-excitation option")
        # the factory fixes the prefix itself (`face_cru_net116_`), the head inside it
        return get_model(name, emb_size=emb_size)
    head = EmbeddingHead(emb_size=emb_size, in_channels=2048, prefix="head_")
    return get_model(name, emb_size=emb_size, use_se=use_se, head=head, prefix=f"{name}_")


def get_symbol(num_classes=512, num_layers=56, use_se=None, version_se=0, version_output="E",
               family="attention", **kwargs):
    """Symbol of face_{family}{num_layers} with a `num_classes`-d embedding output `fc1`.

    `family`: 'attention' (56, 92; bruinxiong fresattnet) or 'cru_net' (56, 116; fcrunet).
    SE (attention only) is off unless `use_se=True` or insightface's `version_se=1` (the
    bruinxiong symbol defaults it on; insightface's train_softmax passes 0). Only output 'E'.
    """
    if str(version_output).upper() != "E":
        raise ValueError(f"only the Option-E embedding is provided, got version_output={version_output!r}")
    unknown = sorted(set(kwargs) - set(_INSIGHTFACE_KEYS))
    if unknown:
        raise TypeError(f"unexpected arguments {unknown}; insightface keys accepted: "
                        f"{', '.join(_INSIGHTFACE_KEYS)}")
    se = bool(version_se) if use_se is None else bool(use_se)
    if family == "cru_net" and use_se is None:
        se = False
    net = face_network(num_layers, family, num_classes, se)
    data = mx.sym.var("data")
    body = data if family == "cru_net" else (data - 127.5) * 0.0078125
    return mx.sym.identity(net(body), name="fc1")
