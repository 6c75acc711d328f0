"""Training and fine-tuning of the mxmodels zoo: `train(...)` (and `caffe2mx train`).

Modules, one job each: options (the option table shared by CLI and API), recipes (the
seeds' presets), data (data sets and iterators), tricks (mixup, label smoothing, no-wd,
last-gamma), schedule (warmup + step/cosine learning rate), margin (insightface's combined
margin head), verification (10-fold face verification on .bin pairs), network (model,
classifier, Caffe weights, freezing), checkpoint (per-epoch checkpoints and resume),
history (log.jsonl and the learning-curve PNG), distributed (kvstores, Horovod), launch
(ps-lite scheduler/servers/workers), worker (a launched worker's entry point), insightface
(the seed authors' parameter names), loop (the epochs), api (`train`).
"""
from .recipes import RECIPES  # noqa: F401


def __getattr__(name):
    """`train`, loaded on first use: it imports MXNet, which the option table does not need."""
    if name == "train":
        from .api import train
        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
