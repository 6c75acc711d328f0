"""The training loop of one process: epochs of (mixup / smoothing) steps, validation, the
per-epoch record and checkpoint, and resuming."""
import json
import sys
import time
from pathlib import Path

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from caffe2mx.converter.errors import UsageError

from ..registry import model_config
from . import checkpoint, history, tricks
from .data import Shard, VerificationData, normaliser, open_data
from .distributed import connect
from .network import build
from .schedule import build_schedule
from .verification import embed, evaluate


def contexts(cfg):
    if cfg.gpus:
        try:
            ids = [int(i) for i in str(cfg.gpus).split(",") if i.strip()]
        except ValueError:
            raise UsageError(f"--gpus takes GPU ids like 0,1; got {cfg.gpus!r}") from None
        if mx.context.num_gpus() < len(ids):
            raise UsageError(f"--gpus {cfg.gpus}: only {mx.context.num_gpus()} GPU(s) visible")
        return [mx.gpu(i) for i in ids]
    if cfg.dtype == "float16":
        raise UsageError("--dtype float16 needs a GPU (--gpus 0,...): MXNet's CPU kernels train in "
                         "float32 only")
    return [mx.cpu()]


def _progress(total, desc, quiet):
    """A tqdm bar on a terminal; nothing otherwise."""
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, leave=False, unit="batch",
                disable=quiet or not sys.stderr.isatty(), file=sys.stderr)


class Run:
    """Everything one process needs for the epochs of `cfg` (see `fit`)."""

    def __init__(self, cfg, out, log=print):
        self.cfg, self.out, self.log = cfg, Path(out), log
        self.cluster = connect(cfg.kvstore)
        self.rank, self.workers = self.cluster.rank, self.cluster.workers
        self.ctxs = contexts(cfg)
        config = model_config(cfg.model)
        self.side = cfg.input_size or config.input_size
        self.mean = tuple(cfg.mean or config.mean)
        self.std = tuple(cfg.std or config.std)
        self.face = config.kind == "embedding"
        self.train_data, self.val_data, self.kind = open_data(cfg, self.side, Shard(self.rank, self.workers))
        self.classes = cfg.classes or getattr(self.train_data, "classes", None)
        mx.random.seed(cfg.seed)          # initialisation: the same weights for the same seed
        np.random.seed(cfg.seed)
        self.net, self.head, self.facts = build(cfg, getattr(self.train_data, "classes", None), self.ctxs)
        self.norm = normaliser(self.mean, self.std, self.ctxs[0])
        self.device_batch = cfg.batch_size
        self.local_batch = cfg.batch_size * len(self.ctxs)
        self.global_batch = self.local_batch * self.workers
        total = getattr(self.train_data, "total", len(self.train_data) * self.workers)
        self.steps = (total // self.workers) // self.local_batch
        if self.steps < 1:
            raise UsageError(f"{len(self.train_data)} training samples per worker are fewer than one "
                             f"batch of {self.local_batch}")
        self.lr = cfg.lr * self.global_batch / cfg.base_batch if cfg.base_batch else cfg.lr
        params = dict(self.net.collect_params().items())
        if self.head is not None:
            params.update(self.head.collect_params().items())
        params = {k: p for k, p in params.items() if p.grad_req != "null"}
        if not params:
            raise UsageError(f"--freeze {cfg.freeze} leaves no parameter to train")
        opt = {"learning_rate": self.lr, "wd": cfg.wd, "momentum": cfg.momentum,
               "lr_scheduler": build_schedule(cfg, self.lr, self.steps)}
        if cfg.dtype == "float16":
            opt["multi_precision"] = True
        if self.cluster.horovod is not None:
            hvd = self.cluster.horovod
            hvd.broadcast_parameters(params, root_rank=0)
            self.trainer = hvd.DistributedTrainer(params, cfg.optimizer, opt)
        else:
            self.trainer = gluon.Trainer(params, cfg.optimizer, opt, kvstore=self.cluster.kvstore,
                                         update_on_kvstore=self.cluster.update_on_kvstore)
        sparse = not (cfg.mixup or cfg.label_smoothing)
        self.loss_fn = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=sparse)
        self.hard_loss = gluon.loss.SoftmaxCrossEntropyLoss()

    # -- one epoch --------------------------------------------------------------------
    def _targets(self, x, y, epoch, rng):
        cfg = self.cfg
        classes = self.head.classes if self.head is not None else self.classes
        if tricks.mixup_active(cfg, epoch):
            lam = tricks.beta_mixing_weight(rng, cfg.mixup_alpha)
            return tricks.mixup(x, y, classes, lam, cfg.label_smoothing)
        if cfg.mixup or cfg.label_smoothing:
            return x, tricks.one_hot_targets(y, classes, cfg.label_smoothing)
        return x, y

    def train_epoch(self, epoch):
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, epoch, self.rank])
        mx.random.seed(cfg.seed * 100003 + epoch * 101 + self.rank)
        augment = cfg.augment != "none"
        loss_sum, correct, seen = mx.nd.zeros(1, ctx=self.ctxs[0]), mx.nd.zeros(1, ctx=self.ctxs[0]), 0
        bar = _progress(self.steps, f"epoch {epoch + 1}/{cfg.epochs}", cfg.quiet or self.rank != 0)
        for xb, yb in self.train_data.batches(self.local_batch, self.steps, rng, augment):
            x = self.norm(xb)
            y = mx.nd.array(yb, ctx=self.ctxs[0], dtype="float32")
            x, target = self._targets(x, y, epoch, rng)
            xs = gluon.utils.split_and_load(x, self.ctxs, even_split=False)
            ts = gluon.utils.split_and_load(target, self.ctxs, even_split=False)
            ys = gluon.utils.split_and_load(y, self.ctxs, even_split=False)
            if cfg.dtype == "float16":
                xs = [v.astype("float16") for v in xs]
            with autograd.record():
                outs = [self._logits(xi, yi) for xi, yi in zip(xs, ys)]
                losses = [self.loss_fn(o.astype("float32"), t) for o, t in zip(outs, ts)]
            for l in losses:
                l.backward()
            self.trainer.step(self.global_batch)
            for l, o, yi in zip(losses, outs, ys):   # summed on the device, read once per epoch
                loss_sum += l.sum().as_in_context(loss_sum.context)
                correct += (o.argmax(axis=1).astype("float32") == yi).sum().as_in_context(correct.context)
            seen += len(yb)
            bar.update(1)
        bar.close()
        return float(loss_sum.asscalar()) / max(seen, 1), float(correct.asscalar()) / max(seen, 1), seen

    def _logits(self, x, y):
        out = self.net(x)
        return self.head(out, y) if self.head is not None else out

    def validate(self):
        if self.val_data is None:
            return {}
        if isinstance(self.val_data, VerificationData):
            result = {}
            for name, images, issame in self.val_data.sets:
                emb = embed(self.net, images, self.norm, self.ctxs[0], self.local_batch)
                acc, std, _ = evaluate(emb, issame)
                result[f"val_{name}"] = acc
                result[f"val_{name}_std"] = std
                result.setdefault("val_acc", acc)
            return result
        loss_sum, correct, n = 0.0, 0, 0
        for xb, yb in self.val_data.batches(self.local_batch):
            x = self.norm(xb)
            if self.cfg.dtype == "float16":
                x = x.astype("float16")
            out = self.net(x).astype("float32")
            y = mx.nd.array(yb, ctx=out.context, dtype="float32")
            loss_sum += float(self.hard_loss(out, y).sum().asscalar())
            correct += int((out.argmax(axis=1) == y).sum().asscalar())
            n += len(yb)
        return {"val_loss": loss_sum / max(n, 1), "val_acc": correct / max(n, 1)}


def _shard_record(run):
    data = run.train_data
    ids = getattr(data, "ids", None)
    record = {"rank": run.rank, "workers": run.workers, "samples": len(data),
              "steps_per_epoch": run.steps, "data": str(run.cfg.data)}
    if ids is not None and len(ids) <= 200000:
        record["ids"] = [int(i) for i in ids]
    return record


def fit(cfg, out, log=print):
    """Train `cfg` in this process, writing into `out` (rank 0 writes the record and the
    checkpoints). Returns the list of per-epoch records."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run = Run(cfg, out, log)
    main = run.rank == 0
    if run.workers > 1:
        (out / f"shard-{run.rank}.json").write_text(json.dumps(_shard_record(run)))
    start = 0
    if cfg.resume:
        start = checkpoint.last_epoch(out)
        if start == 0:
            raise UsageError(f"--resume: no checkpoint (model-NNNN.params) in {out}")
        if start >= cfg.epochs:
            raise UsageError(f"--resume: {out} already holds epoch {start} of {cfg.epochs}")
        checkpoint.load(out, start, run.net, run.trainer, run.head,
                        need_states=not run.cluster.update_on_kvstore)
        rows = history.truncate(out, start) if main else []
    else:
        if main and checkpoint.last_epoch(out):
            raise UsageError(f"{out} already holds checkpoints: add --resume to continue, or "
                             f"choose another --out")
        rows = []
        if main:
            (out / history.LOG).write_text("")
    if main:
        (out / "config.json").write_text(json.dumps(_config_record(cfg, run), indent=1, default=str))
        if not cfg.quiet:
            log(f"training {cfg.model} on {cfg.data} ({len(run.train_data)} samples per worker, "
                f"{run.workers} worker(s)), global batch {run.global_batch}, lr {run.lr:g}, "
                f"{run.steps} steps/epoch, epochs {start + 1}..{cfg.epochs}")
    last = cfg.stop_after or cfg.epochs
    for epoch in range(start, last):
        tic = time.time()
        train_loss, train_acc, seen = run.train_epoch(epoch)
        val = run.validate() if main else {}
        row = {"epoch": epoch + 1, "lr": float(run.trainer.learning_rate), "train_loss": train_loss,
               "train_acc": train_acc, "val_acc": val.get("val_acc"), "seconds": time.time() - tic,
               "samples": seen * run.workers, "mixup": tricks.mixup_active(cfg, epoch)}
        row.update({k: v for k, v in val.items() if k != "val_acc"})
        if main:
            checkpoint.save(out, epoch + 1, run.net, run.trainer, cfg.model, run.head, run.face,
                            run.mean, run.std, save_states=not run.cluster.update_on_kvstore)
            history.append(out, row)
            rows.append(row)
            history.plot(out, rows, f"{cfg.model} on {run.train_data.name or cfg.data}")
            if not cfg.quiet:
                val_text = f"{row['val_acc']:.4f}" if row["val_acc"] is not None else "-"
                log(f"epoch {epoch + 1}/{cfg.epochs}: loss {train_loss:.4f} train acc {train_acc:.4f} "
                    f"val acc {val_text} lr {row['lr']:.4g} ({row['seconds']:.1f}s)")
    mx.nd.waitall()
    return rows


def _config_record(cfg, run):
    record = {k: v for k, v in vars(cfg).items()}
    record.update(facts=run.facts, input_size=run.side, mean=run.mean, std=run.std,
                  global_batch=run.global_batch, scaled_lr=run.lr, workers=run.workers,
                  steps_per_epoch=run.steps)
    return record
