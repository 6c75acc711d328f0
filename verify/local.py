"""Is a divergence the layer's own fault? Re-run that one layer on MXNet's own inputs.

End to end, float32 rounding compounds through a deep net; a point can cross the
tolerance without any layer being wrong. Feeding the NumPy reference of the suspect
layer with the exact bottoms MXNet used isolates what that layer adds.
"""
import numpy as np

from .detections import compare_blob


def local_check(graph, layer, actual, *, bn_blob3="inv_std"):
    """Diff of MXNet's outputs of `layer` against NumPy fed MXNet's inputs; None if not possible."""
    try:
        from .numpy_ref.call import LayerCall
        from .numpy_ref.registry import handler
        node = graph.node(layer)
        fn = handler(node.type)
    except Exception:
        return None
    if any(b not in actual for b in node.bottoms) or any(t not in actual for t in node.tops):
        return None
    feeds = {b: np.asarray(actual[b], np.float64) for b in graph.inputs if b in actual}
    call = LayerCall(node=node, bottoms=[np.asarray(actual[b], np.float64) for b in node.bottoms],
                     blobs=tuple(node.blobs), dtype=np.float64, options={"bn_blob3": bn_blob3}, feeds=feeds,
                     file=graph.file)
    try:
        with np.errstate(all="ignore"):
            outs = fn(call)
    except Exception:
        return None
    diffs = [compare_blob(graph, t, actual[t], o) for t, o in zip(node.tops, outs)]
    worst = max(diffs, key=lambda d: (not d.shape_ok, d.max_rel))
    return worst
