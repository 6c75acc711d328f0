"""Per-epoch checkpoints in MXNet's own format, and resuming from them.

DIR/model-symbol.json and DIR/model-NNNN.params (arg:/aux: keys) after epoch NNNN (1-based),
so `mx.model.load_checkpoint(DIR + '/model', N)`, `gluon.SymbolBlock.imports` and
insightface's loaders read them. A face model's symbol takes raw 0..255 pixels, normalises
them and ends in `fc1`, as insightface's symbols do; its params also hold the margin weight
as `arg:fc7_weight`. DIR/model-NNNN.states holds the optimizer state (momentum, update count,
and so the learning-rate schedule position); DIR/params-map.json maps each saved name to its
block path in the model, so a resumed process loads by structure whatever Gluon's instance
counters named the parameters this time.
"""
import json
import re
from pathlib import Path

import mxnet as mx

from caffe2mx.converter.errors import UsageError

PREFIX = "model"


def _structural(net, canon):
    return {canon(p.name): key for key, p in net._collect_params_with_prefix().items()}


def _canonical(net, model):
    """Names in the files: the net's instance prefix (`residualattentionnet3_`, which depends
    on how many nets the process built) replaced by `<model>_`, so every run of a model writes
    the same names."""
    prefix, stable = net.prefix, f"{model}_"

    def canon(name):
        return stable + name[len(prefix):] if prefix and name.startswith(prefix) else name
    return canon, prefix, stable


def save(out, epoch, net, trainer, model, head=None, face=False, mean=None, std=None,
         save_states=True):
    """Write the epoch's checkpoint; returns the params path."""
    out = Path(out)
    canon, prefix, stable = _canonical(net, model)
    sym_path = out / f"{PREFIX}-symbol.json"
    args, auxs = {}, {}
    sym = _symbol(net, face, mean, std)
    arg_names, aux_names = set(sym.list_arguments()), set(sym.list_auxiliary_states())
    for name, p in net.collect_params().items():
        value = p.data().as_in_context(mx.cpu())
        if name in aux_names:
            auxs[canon(name)] = value
        else:
            args[canon(name)] = value
    if head is not None:
        args["fc7_weight"] = head.weight.data().as_in_context(mx.cpu())
    missing = sorted({canon(a) for a in arg_names - {"data"}} - set(args))
    if missing:
        raise RuntimeError(f"checkpoint misses symbol arguments {missing[:5]}")
    if not sym_path.exists():
        text = sym.tojson()
        if prefix:
            text = text.replace(f'"{prefix}', f'"{stable}')
        sym_path.write_text(text)
        (out / "params-map.json").write_text(json.dumps(_structural(net, canon), indent=0))
    params = out / f"{PREFIX}-{epoch:04d}.params"
    mx.nd.save(str(params), {**{f"arg:{k}": v for k, v in args.items()},
                             **{f"aux:{k}": v for k, v in auxs.items()}})
    if save_states:
        trainer.save_states(str(out / f"{PREFIX}-{epoch:04d}.states"))
    return params


def _symbol(net, face, mean, std):
    """The net's symbol on `data`; for a face model on raw pixels, normalised by the (per-image
    scalar, as insightface's) mean and std, with the output named fc1."""
    data = mx.sym.var("data")
    if not face:
        return net(data)
    if len(set(mean)) != 1 or len(set(std)) != 1:
        raise UsageError(f"a face checkpoint normalises with one mean and std for all channels, "
                         f"got {mean} / {std}")
    x = data if (mean[0], std[0]) == (0, 1) else (data - float(mean[0])) * (1.0 / float(std[0]))
    return mx.sym.identity(net(x), name="fc1")


def last_epoch(out):
    """Highest N with DIR/model-NNNN.params, or 0."""
    found = [int(m.group(1)) for p in Path(out).glob(f"{PREFIX}-*.params")
             if (m := re.fullmatch(rf"{PREFIX}-(\d{{4}})\.params", p.name))]
    return max(found, default=0)


def load(out, epoch, net, trainer, head=None, need_states=True):
    """Restore parameters (by structure) and optimizer state of epoch `epoch`."""
    out = Path(out)
    params_path = out / f"{PREFIX}-{epoch:04d}.params"
    try:
        saved = mx.nd.load(str(params_path))
        names = json.loads((out / "params-map.json").read_text())
    except (OSError, mx.base.MXNetError, json.JSONDecodeError) as exc:
        raise UsageError(f"{out}: cannot resume from epoch {epoch} ({exc})") from None
    values = {k.split(":", 1)[1]: v for k, v in saved.items()}
    current = net._collect_params_with_prefix()
    by_key = {key: values[name] for name, key in names.items() if name in values}
    missing = sorted(set(current) - set(by_key))
    if missing:
        raise UsageError(f"{params_path}: checkpoint of another model (no {missing[:3]})")
    for key, param in current.items():
        param.set_data(by_key[key])
    if head is not None:
        if "fc7_weight" not in values:
            raise UsageError(f"{params_path}: no margin weight fc7_weight")
        head.weight.set_data(values["fc7_weight"])
    states = out / f"{PREFIX}-{epoch:04d}.states"
    if states.exists():
        trainer.load_states(str(states))
    elif need_states:
        raise UsageError(f"{states}: missing; cannot resume with the same optimizer state")
    return epoch
