"""How two activations are compared: one definition used by tests, verify and reports.

Relative error of an element is |a - b| / max(|b|, rms(b)), b being the reference:
elements at or above the blob's RMS are measured against themselves, smaller ones
against the RMS, so float32 rounding of near-zero values in a sum does not read as a
large relative error. NaN/inf must sit at the same positions with the same value.
"""
from dataclasses import dataclass

import numpy as np

#: default pass thresholds for float32 outputs, per comparison
DEFAULT_RTOL = 1e-4
GOLDEN_RTOL = 1e-5


@dataclass(frozen=True)
class Diff:
    shape_ok: bool
    max_abs: float
    max_rel: float
    cosine: float
    nonfinite_ok: bool
    rms: float

    def passed(self, rtol):
        return self.shape_ok and self.nonfinite_ok and self.max_rel <= rtol


def compare(actual, reference):
    a = np.asarray(actual, np.float64)
    b = np.asarray(reference, np.float64)
    if a.shape != b.shape:
        return Diff(False, float("inf"), float("inf"), float("nan"), False, float("nan"))
    fin_a, fin_b = np.isfinite(a), np.isfinite(b)
    nonfinite_ok = bool(np.array_equal(fin_a, fin_b) and
                        np.array_equal(a[~fin_b], b[~fin_b], equal_nan=True))
    if fin_a.all() and fin_b.all():
        av, bv = a.ravel(), b.ravel()
    else:
        mask = fin_a & fin_b
        if not mask.any():
            return Diff(True, 0.0, 0.0, 1.0, nonfinite_ok, 0.0)
        av, bv = a[mask], b[mask]
    rms = float(np.sqrt(np.mean(bv * bv)))
    diff = np.abs(av - bv)
    floor = max(rms, np.finfo(np.float64).tiny)
    rel = float(np.max(diff / np.maximum(np.abs(bv), floor)))
    na, nb = np.linalg.norm(av), np.linalg.norm(bv)
    cosine = float(np.dot(av, bv) / (na * nb)) if na > 0 and nb > 0 else (1.0 if na == nb else 0.0)
    return Diff(True, float(diff.max()), rel, cosine, nonfinite_ok, rms)


#: default pass threshold of `verify`, end to end through a whole net: float32 MXNet against a
#: float64 reference drifts as layers compound rounding (Attention-92 with seeded weights
#: reaches ~8e-4), while the conversion faults it must catch give errors of 1e-2 and more
CHAIN_RTOL = 2e-3

#: pass thresholds per Caffe layer type where float32 needs more slack than DEFAULT_RTOL
TYPE_RTOL = {}


def rtol_for(layer_type, overrides=None, default=None):
    """The threshold for a layer type: user override, then TYPE_RTOL, then the default."""
    if overrides and layer_type in overrides:
        return float(overrides[layer_type])
    if layer_type in TYPE_RTOL:
        return TYPE_RTOL[layer_type]
    return DEFAULT_RTOL if default is None else float(default)
