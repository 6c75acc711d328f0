"""`train(...)`: the Python face of `caffe2mx train`, with the same options (see options.py)."""
from caffe2mx.converter.errors import UsageError

from . import history
from .options import OPTIONS, flag, resolve
from .recipes import describe

# what --dry-run and a recipe run print, in this order
SHOWN = ("model", "model_kwargs", "data", "epochs", "batch_size", "devices", "base_batch", "lr",
         "lr_mode", "lr_steps", "lr_step_unit", "lr_decay", "warmup_epochs", "warmup_lr",
         "final_lr", "optimizer", "momentum", "wd", "no_wd", "last_gamma", "mixup", "mixup_alpha",
         "mixup_off_epochs", "label_smoothing", "dtype", "mode", "init", "margin", "margin_s",
         "kvstore", "from_caffe", "freeze", "classes")


def hyper_parameters(cfg):
    """[(flag, value)] of the resolved training hyper-parameters."""
    return [(flag(k), getattr(cfg, k)) for k in SHOWN]


def show(cfg, log=print):
    if cfg.recipe:
        for line in describe(cfg.recipe, cfg):
            log(line)
    log("hyper-parameters:")
    for flag, value in hyper_parameters(cfg):
        log(f"  {flag} {value}")


def train(model=None, data=None, out=None, *, recipe=None, log=print, **options):
    """Train a registered model; keywords are the CLI's options with underscores
    (`lr_mode='cosine'`, `label_smoothing=0.1`, `launch='local'`, ...).

    Returns the per-epoch records of DIR/log.jsonl (None with dry_run=True).
    """
    given = dict(options, model=model, data=data, out=out, recipe=recipe)
    explicit = {k: v for k, v in given.items() if v is not None}
    cfg = resolve(explicit)
    if cfg.dry_run:
        show(cfg, log)
        return None
    if not cfg.out:
        raise UsageError("give an output directory (--out DIR)")
    if not cfg.model:
        raise UsageError("give --model NAME or a --recipe")
    from ..registry import model_config
    try:
        model_config(cfg.model)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if cfg.recipe and not cfg.quiet:
        show(cfg, log)
    if cfg.launch:
        from .launch import launch
        launch(cfg, explicit, cfg.out, log)
        return history.read_log(cfg.out)
    from .loop import fit
    return fit(cfg, cfg.out, log)


__all__ = ["train", "OPTIONS"]
