"""How two activations are compared, and how close float32 arithmetic lets them be.

Relative error of an element is |a - b| / max(|b|, rms(b)), b being the reference:
elements at or above the blob's RMS are measured against themselves, smaller ones
against the RMS, so float32 rounding of near-zero values in a sum does not read as a
large relative error. NaN/inf must sit at the same positions with the same value.

The tolerances follow from float32 arithmetic (unit roundoff u = 2^-24), in one table:

- a layer's own error (run on the reference's bottoms: teacher forcing) is allowed
  u * c * sqrt(K): K is the layer's reduction length (its handler's `reduction_length`,
  e.g. C_in*kh*kw for a convolution: K roundings accumulate like a random walk), c the
  type's rounding constant from TYPE_ROUNDING (how many roundings per value, times the
  usual amplification by the magnitude of the inputs relative to the output: a BN
  subtracting a mean cancels leading digits). Where a layer's inputs are so much larger
  than its output that this is not enough, the layer is run in float32 by the NumPy
  reference on the same inputs, and MXNet may be ESCALATION times as far from float64 as
  that run is: the tolerance is then what float32 itself does to this layer on these values.
- end to end (free running), the MXNet run may drift from the float64 reference up to
  DRIFT_FACTOR times as far as the reference run in float32 drifts, blob by blob: the
  float32 rounding the net itself amplifies, measured on the same input.

Measured on eleven nets (2,100 layers, seeded weights): MXNet's own error reaches 12.6 u sqrt(K)
(a BN) and 5.9 times NumPy's float32 error of the same layer (MKL-DNN sums in another order);
end to end it reaches 4.1 times the NumPy float32 drift (OpenPose: 36 unnormalised 3x3
convolutions in a row; median over all blobs 1.1), hence DRIFT_FACTOR 8, as ESCALATION.
"""
from dataclasses import dataclass
import math

import numpy as np

#: unit roundoff of float32 (round to nearest)
U32 = 2.0 ** -24

#: rounding constant c per Caffe layer type (tolerance u * c * sqrt(K)); DEFAULT_ROUNDING otherwise
TYPE_ROUNDING = {
    # exact in float32 up to the rounding of their inputs: copies, selections, max
    "ReLU": 4, "Concat": 4, "Slice": 4, "Split": 4, "Flatten": 4, "Reshape": 4, "Crop": 4, "Dropout": 4,
    "Input": 4,
    # per-channel affine maps that subtract a mean: leading digits cancel by |mean| / std
    "BN": 32, "BatchNorm": 32, "Scale": 32, "Bias": 32,
}
DEFAULT_ROUNDING = 16
#: a layer past its table tolerance still passes within ESCALATION x NumPy's float32 error on the same inputs
ESCALATION = 8
#: end to end: MXNet within DRIFT_FACTOR x the NumPy float32 run's distance from float64 (each layer may
#: already be ESCALATION x NumPy's float32 error on its own, so the chain may be too)
DRIFT_FACTOR = 8
#: a Caffe (or ONNX Runtime) reference is float32 too: two engines' rounding between the sides
FLOAT32_REFERENCE_ENGINES = 2

#: `--strict`: blob-by-blob end-to-end threshold (the earlier default): float32 MXNet against a float64
#: reference drifts as layers compound rounding (Attention-92 with seeded weights reaches ~8e-4)
CHAIN_RTOL = 2e-3
#: one-layer parity cases (tests) against a float64 reference
DEFAULT_RTOL = 1e-4
GOLDEN_RTOL = 1e-5


def layer_tolerance(layer_type, reduction_length=1, overrides=None, rtol=None):
    """A layer's own tolerance: user override (--type-rtol, --rtol), else u * c * sqrt(K)."""
    if overrides and layer_type in overrides:
        return float(overrides[layer_type])
    if rtol is not None:
        return float(rtol)
    c = TYPE_ROUNDING.get(layer_type, DEFAULT_ROUNDING)
    return U32 * c * math.sqrt(max(1, int(reduction_length)))


def escalated_tolerance(table_tol, float32_error, engines=1):
    """The tolerance once NumPy's own float32 error of the layer on the same inputs is known."""
    return max(table_tol, ESCALATION * engines * float32_error)


def drift_bound(float32_drift, floor=0.0, engines=1):
    """How far the free-running MXNet blob may be from float64, given the float32 reference's drift there."""
    return DRIFT_FACTOR * engines * max(float32_drift, floor)


def rtol_for(layer_type, overrides=None, default=None):
    """`--strict` threshold for a layer type: user override, else the default."""
    if overrides and layer_type in overrides:
        return float(overrides[layer_type])
    return DEFAULT_RTOL if default is None else float(default)


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


_SHAPES_DIFFER = Diff(False, float("inf"), float("inf"), float("nan"), False, float("nan"))
CHUNK = 1 << 16  # elements per pass: float64 temporaries stay in cache and never scale with the blob


def compare(actual, reference):
    """Diff of one array against a reference (see compare_many)."""
    return compare_many(reference, [actual])[0]


def compare_many(reference, actuals, cosine=None):
    """Diffs of several arrays against one reference, reading the reference once, in chunks.

    Nothing of the blob's size is allocated: float64 work arrays are CHUNK elements long.
    `cosine`: per array, whether to compute it (default all; nan where skipped).
    """
    b = np.asarray(reference)
    arrays = [np.asarray(a) for a in actuals]
    out = [None] * len(arrays)
    same = [i for i, a in enumerate(arrays) if a.shape == b.shape]
    for i, a in enumerate(arrays):
        if a.shape != b.shape:
            out[i] = _SHAPES_DIFFER
    if not same:
        return out
    bf = b.reshape(-1)
    if bf.size == 0:
        for i in same:
            out[i] = Diff(True, 0.0, 0.0, 1.0, True, 0.0)
        return out
    flat = {i: arrays[i].reshape(-1) for i in same}
    bb = _sumsq(bf)
    if not math.isfinite(bb):
        for i in same:
            out[i] = _compare_nonfinite(flat[i], bf)
        return out
    rms = math.sqrt(bb / bf.size)
    floor = max(rms, np.finfo(np.float64).tiny)
    acc = {i: [0.0, 0.0, 0.0, 0.0] for i in same}  # max_abs, max_rel, a.b, a.a
    want_cos = [True] * len(arrays) if cosine is None else list(cosine)
    n = min(CHUNK, bf.size)
    bc_buf, den_buf, ac_buf, d_buf = (np.empty(n, np.float64) for _ in range(4))
    for s in range(0, bf.size, CHUNK):
        e = min(s + CHUNK, bf.size)
        bc, den, ac, d = bc_buf[:e - s], den_buf[:e - s], ac_buf[:e - s], d_buf[:e - s]
        np.copyto(bc, bf[s:e])
        np.abs(bc, out=den)
        np.maximum(den, floor, out=den)
        for i in same:
            np.copyto(ac, flat[i][s:e])
            np.subtract(ac, bc, out=d)
            np.abs(d, out=d)
            m = acc[i]
            m[0] = max(m[0], float(d.max()))
            np.divide(d, den, out=d)
            m[1] = max(m[1], float(d.max()))
            if want_cos[i]:
                m[2] += float(np.einsum("i,i->", ac, bc))  # not BLAS: its threads contend with MXNet's
                m[3] += float(np.einsum("i,i->", ac, ac))
    for i in same:
        max_abs, max_rel, ab, aa = acc[i]
        if not (math.isfinite(max_abs) and math.isfinite(aa)):  # NaN/inf in the actual array
            out[i] = _compare_nonfinite(flat[i], bf)
        else:
            out[i] = Diff(True, max_abs, max_rel, _cosine(ab, aa, bb) if want_cos[i] else float("nan"), True, rms)
    return out


def _sumsq(x):
    if x.dtype == np.float64:
        return float(np.einsum("i,i->", x, x))
    total, buf = 0.0, np.empty(min(CHUNK, x.size), np.float64)
    for s in range(0, x.size, CHUNK):
        c = buf[:min(CHUNK, x.size - s)]
        np.copyto(c, x[s:s + CHUNK])
        total += float(np.einsum("i,i->", c, c))
    return total


def _cosine(ab, aa, bb):
    if aa > 0 and bb > 0:
        return ab / math.sqrt(aa * bb)
    return 1.0 if aa == bb else 0.0


def _compare_nonfinite(a, b):
    """The slow path: NaN/inf must match position and value; the rest is compared as usual."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    fin_a, fin_b = np.isfinite(a), np.isfinite(b)
    nonfinite_ok = bool(np.array_equal(fin_a, fin_b) and np.array_equal(a[~fin_b], b[~fin_b], equal_nan=True))
    mask = fin_a & fin_b
    if not mask.any():
        return Diff(True, 0.0, 0.0, 1.0, nonfinite_ok, 0.0)
    av, bv = a[mask], b[mask]
    with np.errstate(over="ignore"):
        rms = float(np.sqrt(np.mean(bv * bv)))
        diff = np.abs(av - bv)
        floor = max(rms, np.finfo(np.float64).tiny)
        rel = float(np.max(diff / np.maximum(np.abs(bv), floor)))
        na, nb = np.linalg.norm(av), np.linalg.norm(bv)
        cosine = float(np.dot(av, bv) / (na * nb)) if na > 0 and nb > 0 else (1.0 if na == nb else 0.0)
    return Diff(True, float(diff.max()), rel, cosine, nonfinite_ok, rms)
