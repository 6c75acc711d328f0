"""Every option of `caffe2mx train`, declared once: the CLI builds its parser from this table
and the Python API (`train(**options)`) checks its keywords against it, so the two agree.

Names and meanings follow the seed training scripts (GluonCV's train_imagenet.py family,
which the AFF/ATAC and Residual Attention seeds use, and insightface's train_softmax.py).
A recipe (`--recipe NAME`) fills in what the user did not give explicitly.
"""
import argparse
import json
from dataclasses import dataclass, field
from types import SimpleNamespace

from caffe2mx.converter.errors import UsageError

KVSTORES = ("local", "device", "dist_sync", "dist_async", "dist_device_sync", "horovod")


@dataclass(frozen=True)
class Option:
    dest: str
    flags: tuple
    default: object = None
    help: str = ""
    kw: dict = field(default_factory=dict)


def _floats(text):
    return [float(v) for v in str(text).split(",") if v.strip()]


O = Option
OPTIONS = (
    # what to train, on what, where
    O("model", ("--model",), None, "registered model name (caffe2mx.mxmodels.list_models())",
      dict(metavar="NAME")),
    O("data", ("--data",), None, "training data: 'digits' (built in), a CIFAR-10/100 python batch "
      "folder, an ImageNet-style .rec file, an image-folder tree, or an insightface face folder "
      "(train.rec + property + *.bin); KIND:PATH forces the kind (cifar, rec, folder, face)",
      dict(metavar="SPEC")),
    O("val_data", ("--val-data",), None, "validation data (default: the matching split of --data: "
      "CIFAR test_batch/test, val.rec beside train.rec, val/ beside train/, the face .bin pairs)",
      dict(metavar="SPEC")),
    O("out", ("--out", "-o"), None, "output directory: checkpoints, log.jsonl, learning-curve.png",
      dict(metavar="DIR")),
    O("recipe", ("--recipe",), None, "preset reproducing a seed's command line (see --list-recipes)",
      dict(metavar="NAME")),
    O("model_kwargs", ("--model-kwargs",), None, "JSON object of extra model factory keywords, e.g. "
      "'{\"widths\": [8, 16, 32, 64]}'", dict(metavar="JSON")),
    O("classes", ("--classes",), None, "replace the classifier with a new one for N classes "
      "(fine-tuning); default: the data's class count where the model's differs",
      dict(type=int, metavar="N")),
    O("from_caffe", ("--from-caffe",), None, "start from converted Caffe weights (through "
      "caffe2mx.mxmodels.caffe_bridge)", dict(nargs=2, metavar=("NET.prototxt", "NET.caffemodel"))),
    O("bn_blob3", ("--bn-blob3",), "inv_std", "meaning of the 4th blob of the fork's BN layers in "
      "--from-caffe weights", dict(choices=("inv_std", "variance"))),
    O("freeze", ("--freeze",), None, "keep the parameters of the model's top-level stages up to and "
      "including STAGE fixed (BN statistics too); see --list-stages", dict(metavar="STAGE")),
    O("input_size", ("--input-size",), None, "square input side (default: the model's registered size)",
      dict(type=int, metavar="PX")),
    O("mean", ("--mean",), None, "per-channel mean subtracted from 0..255 pixels (default: the model's)",
      dict(type=_floats, metavar="R,G,B")),
    O("std", ("--std",), None, "per-channel std the pixels are divided by (default: the model's)",
      dict(type=_floats, metavar="R,G,B")),
    O("train_samples", ("--train-samples",), None, "use only the first N training samples (a quick run)",
      dict(type=int, metavar="N")),
    O("val_samples", ("--val-samples",), None, "use only the first N validation samples",
      dict(type=int, metavar="N")),
    O("augment", ("--augment",), "default", "training augmentation: 'default' (the data kind's: "
      "pad-4 random crop + mirror for CIFAR, random resized crop + mirror + colour jitter for "
      "ImageNet-style data, shifts for digits, mirror for faces) or 'none'",
      dict(choices=("default", "none"))),
    O("jitter", ("--jitter",), 0.4, "brightness/contrast/saturation jitter of ImageNet-style data",
      dict(type=float)),
    O("pca_noise", ("--pca-noise",), 0.1, "AlexNet-style PCA lighting noise of ImageNet-style data",
      dict(type=float)),
    O("min_area", ("--min-random-area",), 0.08, "random resized crop: smallest area fraction",
      dict(type=float)),
    O("crop_ratio", ("--crop-ratio",), 0.875, "validation: resize to side/ratio, centre crop",
      dict(type=float)),
    O("num_workers", ("-j", "--num-data-workers"), 2, "data decoding threads", dict(type=int)),
    # optimisation
    O("epochs", ("--epochs", "--num-epochs"), 10, "number of epochs", dict(type=int)),
    O("batch_size", ("--batch-size",), 64, "batch size per device (per worker process on CPU)",
      dict(type=int)),
    O("devices", ("--devices",), 1, "devices the recipe's learning rate assumes (its GPU count); "
      "with --gpus, the GPUs used", dict(type=int)),
    O("gpus", ("--gpus",), "", "GPU ids, e.g. 0,1 (default: CPU)", dict(metavar="IDS")),
    O("lr", ("--lr",), 0.1, "base learning rate at the recipe's global batch (--base-batch)",
      dict(type=float)),
    O("base_batch", ("--base-batch",), None, "global batch the --lr belongs to; the LR is scaled "
      "linearly to the actual global batch (default: no scaling)", dict(type=int)),
    O("lr_mode", ("--lr-mode",), "step", "learning-rate decay after warmup",
      dict(choices=("step", "cosine", "poly", "constant"))),
    O("lr_steps", ("--lr-steps", "--lr-decay-epoch"), "", "decay points for --lr-mode step, in "
      "epochs (or iterations with --lr-step-unit iter)", dict(metavar="E1,E2")),
    O("lr_step_unit", ("--lr-step-unit",), "epoch", "unit of --lr-steps (insightface counts "
      "iterations)", dict(choices=("epoch", "iter"))),
    O("lr_decay", ("--lr-decay",), 0.1, "factor per step decay", dict(type=float)),
    O("warmup_epochs", ("--warmup-epochs",), 0.0, "linear warmup length", dict(type=float)),
    O("warmup_lr", ("--warmup-lr",), 0.0, "learning rate at the start of the warmup", dict(type=float)),
    O("final_lr", ("--final-lr",), 0.0, "learning rate at the end of cosine/poly decay",
      dict(type=float)),
    O("optimizer", ("--optimizer",), "nag", "optimizer", dict(choices=("sgd", "nag"))),
    O("momentum", ("--momentum",), 0.9, "momentum", dict(type=float)),
    O("wd", ("--wd",), 1e-4, "weight decay", dict(type=float)),
    O("no_wd", ("--no-wd",), False, "no weight decay on BN gamma/beta and biases",
      dict(action="store_true")),
    O("last_gamma", ("--last-gamma",), False, "zero-initialise the gamma of the last BN in each "
      "residual unit's branch", dict(action="store_true")),
    O("mixup", ("--mixup",), False, "mixup: train on convex mixtures of each batch with itself "
      "reversed", dict(action="store_true")),
    O("mixup_alpha", ("--mixup-alpha",), 0.2, "Beta(alpha, alpha) of the mixing weight",
      dict(type=float)),
    O("mixup_off_epochs", ("--mixup-off-epoch", "--mixup-off-epochs"), 0, "last epochs trained "
      "without mixup", dict(type=int)),
    O("label_smoothing", ("--label-smoothing",), None, "label smoothing epsilon (0.1 when given "
      "without a value)", dict(nargs="?", const=0.1, type=float, metavar="EPS")),
    O("init", ("--init",), "msra", "initializer of the parameters not loaded from elsewhere",
      dict(choices=("msra", "xavier", "xavier-out"))),
    O("dtype", ("--dtype",), "float32", "training precision (float16 needs a GPU)",
      dict(choices=("float32", "float16"))),
    O("mode", ("--mode",), "hybrid", "hybrid (compiled graph) or imperative",
      dict(choices=("hybrid", "imperative"))),
    O("seed", ("--seed",), 0, "seed of initialisation, shuffling, augmentation and mixup",
      dict(type=int)),
    # face
    O("margin", ("--margin",), None, "combined margin m1,m2,m3 of the face margin head "
      "(cos(m1*theta + m2) - m3): ArcFace 1,0.5,0; CosFace 1,0,0.35; SphereFace 1.35,0,0; "
      "default ArcFace for embedding models", dict(type=_floats, metavar="M1,M2,M3")),
    O("margin_s", ("--margin-s",), 64.0, "scale s of the margin head's logits", dict(type=float)),
    # distributed
    O("kvstore", ("--kvstore",), "local", "gradient aggregation", dict(choices=KVSTORES)),
    O("launch", ("--launch",), None, "start a parameter-server job: 'local' (processes on this "
      "host) or 'ssh' (one worker per host of --hosts)", dict(choices=("local", "ssh"))),
    O("workers", ("--workers",), 1, "worker processes of --launch", dict(type=int)),
    O("servers", ("--servers",), 1, "server processes of --launch", dict(type=int)),
    O("hosts", ("--hosts",), None, "host file for --launch ssh (one host per line)",
      dict(metavar="FILE")),
    O("launch_port", ("--launch-port",), 0, "scheduler port of --launch (0: a free one)", dict(type=int)),
    O("launch_host", ("--launch-host",), "127.0.0.1", "address workers use to reach the scheduler "
      "(--launch ssh: this host's address on the cluster network)", dict(metavar="ADDR")),
    # run control
    O("resume", ("--resume",), False, "continue from the last checkpoint in --out (same schedule "
      "and optimizer state)", dict(action="store_true")),
    O("stop_after", ("--stop-after",), None, "stop after this epoch (resume later with --resume)",
      dict(type=int, metavar="EPOCH")),
    O("dry_run", ("--dry-run",), False, "print the resolved hyper-parameters and exit",
      dict(action="store_true")),
    O("quiet", (), False, "no progress bar or per-epoch lines (the CLI's -q)"),
)
DEFAULTS = {o.dest: o.default for o in OPTIONS}
BY_DEST = {o.dest: o for o in OPTIONS}


def flag(dest):
    """The option's long flag, as printed (e.g. --num-data-workers)."""
    o = BY_DEST[dest]
    return next((f for f in o.flags if f.startswith("--")), "--" + dest.replace("_", "-"))


def add_arguments(parser):
    """Add every option to an argparse parser; absent options stay absent (recipes fill them)."""
    for o in OPTIONS:
        if not o.flags:
            continue
        parser.add_argument(*o.flags, dest=o.dest, default=argparse.SUPPRESS, help=_help(o), **o.kw)


def _help(o):
    if o.default in (None, False, "") or o.kw.get("action") == "store_true":
        return o.help
    return f"{o.help} (default {o.default})"


def _coerce(dest, value):
    """API values to the CLI's types (lists or comma strings, JSON or dicts)."""
    if value is None:
        return None
    if dest in ("mean", "std", "margin") and not isinstance(value, (list, tuple)):
        return _floats(value)
    if dest == "lr_steps":
        return [float(v) for v in (value if isinstance(value, (list, tuple)) else str(value).split(","))
                if str(v).strip()]
    if dest == "model_kwargs" and isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--model-kwargs is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise UsageError("--model-kwargs must be a JSON object")
    if dest == "from_caffe":
        if len(value) != 2:
            raise UsageError("--from-caffe takes NET.prototxt NET.caffemodel")
        return [str(v) for v in value]
    if dest == "gpus" and isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return value


def resolve(explicit):
    """The full configuration: defaults, then the recipe's values, then what was given.

    Returns a SimpleNamespace with every option, plus `explicit` (the names given) and
    `recipe_values` (what the recipe set).
    """
    from .recipes import recipe_options
    unknown = sorted(set(explicit) - set(DEFAULTS))
    if unknown:
        raise UsageError(f"unknown training option(s) {unknown}; valid: {', '.join(sorted(DEFAULTS))}")
    values = dict(DEFAULTS)
    recipe_values = recipe_options(explicit.get("recipe")) if explicit.get("recipe") else {}
    values.update(recipe_values)
    values.update(explicit)
    values = {k: _coerce(k, v) for k, v in values.items()}
    cfg = SimpleNamespace(**values)
    cfg.explicit = sorted(explicit)
    cfg.recipe_values = recipe_values
    _check(cfg)
    return cfg


def _check(cfg):
    if cfg.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {cfg.epochs}")
    if cfg.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {cfg.batch_size}")
    if cfg.stop_after is not None and not 1 <= cfg.stop_after <= cfg.epochs:
        raise UsageError(f"--stop-after must be between 1 and --epochs ({cfg.epochs})")
    if cfg.warmup_epochs < 0 or cfg.warmup_epochs > cfg.epochs:
        raise UsageError(f"--warmup-epochs must be between 0 and --epochs ({cfg.epochs})")
    if cfg.lr_mode == "step" and sorted(cfg.lr_steps) != list(cfg.lr_steps):
        raise UsageError(f"--lr-steps must increase: {cfg.lr_steps}")
    if cfg.label_smoothing is not None and not 0 <= cfg.label_smoothing < 1:
        raise UsageError(f"--label-smoothing must be in [0, 1), got {cfg.label_smoothing}")
    if cfg.mixup and cfg.mixup_alpha <= 0:
        raise UsageError(f"--mixup-alpha must be positive, got {cfg.mixup_alpha}")
    if cfg.margin is not None and len(cfg.margin) != 3:
        raise UsageError(f"--margin takes three numbers m1,m2,m3, got {cfg.margin}")
    for name in ("mean", "std"):
        v = getattr(cfg, name)
        if v is not None and len(v) != 3:
            raise UsageError(f"--{name} takes three numbers (R,G,B), got {v}")
    if cfg.launch and cfg.workers < 1:
        raise UsageError("--workers must be at least 1")
    if cfg.launch == "ssh" and not cfg.hosts:
        raise UsageError("--launch ssh needs --hosts FILE")
    if cfg.launch and not cfg.kvstore.startswith("dist"):
        raise UsageError(f"--launch starts a parameter-server job: give --kvstore dist_sync, "
                         f"dist_async or dist_device_sync (got {cfg.kvstore})")
