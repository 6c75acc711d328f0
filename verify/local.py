"""`--strict`: is a divergence the layer's own fault? Re-run that one layer on MXNet's own inputs.

End to end, float32 rounding compounds through a deep net; a point can cross the
tolerance without any layer being wrong. Feeding the NumPy reference of the suspect
layer with the exact bottoms MXNet used isolates what that layer adds.
"""
import numpy as np

from .metrics import compare
from .numpy_ref.forward import run_node


def local_check(node, bottoms, tops, *, options=None, feeds=None, file=None):
    """Worst Diff of MXNet's outputs `tops` of `node` against NumPy fed MXNet's `bottoms`; None if not possible."""
    if any(b is None for b in bottoms) or any(t is None for t in tops):
        return None
    try:
        with np.errstate(all="ignore"):
            outs = run_node(node, [np.asarray(b, np.float64) for b in bottoms], options=options, feeds=feeds,
                            file=file)
    except Exception:
        return None
    diffs = [compare(t, o) for t, o in zip(tops, outs)]
    return max(diffs, key=lambda d: (not d.shape_ok, d.max_rel))
