"""Learning-rate schedule: linear warmup, then step, cosine, poly or constant, per update.

The value is a pure function of the update count, so a run resumed from a checkpoint (whose
optimizer state carries the count) follows exactly the schedule of an uninterrupted run.
Warmup and decay follow GluonCV's LRSequential(LRScheduler('linear'), LRScheduler(mode)),
which the seeds use: the decay phase spans the epochs after the warmup, and step points are
epochs counted from the start of training.
"""
import math

from mxnet.lr_scheduler import LRScheduler


class WarmupSchedule(LRScheduler):
    """lr(t) for update t = 0, 1, ...: `warmup_updates` linear from `warmup_lr` to `base_lr`,
    then `mode` over `total_updates - warmup_updates` updates:
    step (times `factor` at each update count in `steps`), cosine (to `final_lr`),
    poly (power 2, to `final_lr`) or constant."""

    def __init__(self, base_lr, total_updates, warmup_updates=0, warmup_lr=0.0, mode="step",
                 steps=(), factor=0.1, final_lr=0.0, power=2.0):
        super().__init__(base_lr=base_lr)
        if mode not in ("step", "cosine", "poly", "constant"):
            raise ValueError(f"mode must be step, cosine, poly or constant, got {mode!r}")
        self.total = max(int(total_updates), 1)
        self.warmup = int(warmup_updates)
        self.warmup_lr = float(warmup_lr)
        self.mode = mode
        self.steps = [int(s) for s in steps]
        self.factor = float(factor)
        self.final_lr = float(final_lr)
        self.power = float(power)

    def __call__(self, num_update):
        t = int(num_update)
        if t < self.warmup:
            return self.warmup_lr + (self.base_lr - self.warmup_lr) * t / self.warmup
        if self.mode == "constant":
            return self.base_lr
        if self.mode == "step":
            return self.base_lr * self.factor ** sum(1 for s in self.steps if t >= s)
        span = max(self.total - self.warmup, 1)
        progress = min((t - self.warmup) / span, 1.0)
        if self.mode == "cosine":
            return self.final_lr + (self.base_lr - self.final_lr) * (1 + math.cos(math.pi * progress)) / 2
        return self.final_lr + (self.base_lr - self.final_lr) * (1 - progress) ** self.power


def build_schedule(cfg, lr, updates_per_epoch):
    """The schedule of a resolved config at (already scaled) learning rate `lr`."""
    per = max(int(updates_per_epoch), 1)
    if cfg.lr_step_unit == "iter":
        steps = [int(s) for s in cfg.lr_steps]
    else:
        steps = [int(round(s * per)) for s in cfg.lr_steps]
    return WarmupSchedule(lr, cfg.epochs * per, int(round(cfg.warmup_epochs * per)), cfg.warmup_lr,
                          cfg.lr_mode, steps, cfg.lr_decay, cfg.final_lr)
