"""The bag of tricks of the seed recipes (Xie et al., "Bag of Tricks for Image Classification",
as GluonCV implements it): mixup, label smoothing, no weight decay on BN and biases, and
zero-initialised last BN gamma of each residual unit.
"""
import re

from mxnet import nd
from mxnet.gluon import nn

from ..atac import BottleneckATAC
from ..blocks.cru import CRUUnit, FaceCRUUnit, FaceResNeXtUnit
from ..blocks.fusion import PreActBasicBlock
from ..blocks.residual import FaceBottleneck, PreActBottleneck, ResNeXtUnit


def one_hot_targets(labels, classes, smoothing=None):
    """Dense targets: one-hot, or smoothed as GluonCV does (1 - eps + eps/K on the label,
    eps/K elsewhere)."""
    eps = float(smoothing or 0.0)
    return nd.one_hot(labels, classes, on_value=1 - eps + eps / classes, off_value=eps / classes)


def mixup(data, labels, classes, lam, smoothing=None):
    """(mixed data, mixed dense targets): x' = lam*x + (1-lam)*x reversed, likewise the
    (smoothed) one-hot targets; the batch mixed with itself in reverse order, as the seeds do."""
    targets = one_hot_targets(labels, classes, smoothing)
    return (lam * data + (1 - lam) * data[::-1],
            lam * targets + (1 - lam) * targets[::-1])


def mixup_active(cfg, epoch):
    """Mixup runs in epochs [0, epochs - mixup_off_epochs) (0-based)."""
    return bool(cfg.mixup) and epoch < cfg.epochs - int(cfg.mixup_off_epochs)


NO_WD_PATTERN = re.compile(r".*(beta|gamma|bias)$")
"""GluonCV's `collect_params('.*beta|.*gamma|.*bias')`: BN shift/scale and every bias."""


def no_weight_decay(params):
    """Set wd_mult = 0 on BN gamma/beta and biases; returns the names so selected."""
    chosen = []
    for name, param in params.items():
        if NO_WD_PATTERN.match(name):
            param.wd_mult = 0.0
            chosen.append(name)
    return chosen


# Residual unit classes and the part of each that is its shortcut rather than its branch.
RESIDUAL_UNITS = (PreActBottleneck, ResNeXtUnit, FaceBottleneck, FaceResNeXtUnit, CRUUnit,
                  FaceCRUUnit, PreActBasicBlock, BottleneckATAC)
_SHORTCUT_CHILDREN = {"shortcut", "proj", "proj_in", "down", "fuse"}


def last_branch_bn(unit):
    """The last BatchNorm of a residual unit's branch: a direct child of the unit (or of its
    `body` sequence), shortcut/projection/fusion parts and activation blocks excluded.
    Post-activation units end their branch with it (ResNeXt bn3, face bn); pre-activation
    units (Caffe RAN, CIFAR basic blocks, CRU) have it before their last conv, as in GluonCV's
    v2 blocks; either way a zero gamma (with beta 0) makes the branch output zero."""
    candidates = []
    for key, child in unit._children.items():
        if key in _SHORTCUT_CHILDREN:
            continue
        if key == "body":
            candidates += [c for c in child._children.values() if isinstance(c, nn.BatchNorm)]
        elif isinstance(child, nn.BatchNorm):
            candidates.append(child)
    return candidates[-1] if candidates else None


def residual_units(net):
    found = []

    def walk(block):
        if isinstance(block, RESIDUAL_UNITS):
            found.append(block)
        for child in block._children.values():
            walk(child)
    walk(net)
    return found


def zero_last_gamma(net):
    """Initialise to zero the gamma of `last_branch_bn` of every residual unit (GluonCV's
    `last_gamma=True`): each unit starts as its shortcut. Call after initialisation; returns
    the gamma Parameters set."""
    done = []
    for unit in residual_units(net):
        bn = last_branch_bn(unit)
        if bn is None or bn.gamma.grad_req == "null":
            continue
        bn.gamma.set_data(nd.zeros(bn.gamma.shape, dtype=bn.gamma.dtype))
        done.append(bn.gamma)
    return done


def beta_mixing_weight(rng, alpha):
    """lam ~ Beta(alpha, alpha), from the run's seeded generator."""
    return float(rng.beta(alpha, alpha))

