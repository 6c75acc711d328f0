"""Comparing detection lists (DetectionOutput rows, proposal rois) by content, not position.

A detection layer's output is a list whose order and length follow data-dependent decisions:
sorting by score, NMS, top-k cuts, a confidence threshold. float32 (MXNet) and float64 (the
NumPy reference), or Caffe itself, can take a near-tied decision differently, and a Caffe dump
holds only the rows Caffe kept, where the converted layer pads to a fixed count. So:

1. padding goes: rows whose label is -1 (DetectionOutput), repeats of the kept rows and the
   "nothing kept" row (the proposal layer's rois), as the layer's `detection_layout` says;
2. each reference row is paired with the actual row of the same image and label that is
   nearest (each value relative to itself, or to its column's median magnitude when smaller),
   if within PAIR;
3. the paired rows are compared with `metrics.compare`, so the verdict uses the usual rtol;
4. a row left without a partner is tolerated only if its score sits within TIE of a decision
   float rounding can flip: another score of its image and label (order, NMS precedence), the
   lowest kept score (a top-k cut), or the layer's confidence threshold. Any other unpaired
   row makes max_rel infinite.

Blobs computed row by row from a proposal list (ROIPooling, the fully connected head) are
compared after the same pairing: their rows are taken in the paired order.
The parity comparison pairs the rows of these lists (`compare_detections`), and feeds a dump's
shorter list to the layers after it padded as the converted layer pads (`pad_rows`).
"""
from dataclasses import dataclass

import numpy as np

from caffe2mx.converter.layers import handler_for

from .metrics import Diff, compare

#: rows whose boxes and scores differ by less than this (relative) are the same detection
PAIR = 1e-2
#: scores closer than this (relative to the image's largest score) may be ordered either way
TIE = 1e-3


@dataclass(frozen=True)
class DetectionDiff(Diff):
    """A Diff over paired rows, with what the pairing found."""

    paired: int = 0
    actual_rows: int = 0
    reference_rows: int = 0
    tolerated: int = 0     # unpaired rows explained by a near-tied decision
    unexplained: int = 0   # unpaired rows nothing explains (max_rel is then infinite)
    distinct_scores: int = 0  # distinct scores among the reference rows (a pairing not carried by ties)

    def summary(self):
        return (f"{self.paired} rows paired of {self.actual_rows} (converted) and {self.reference_rows} "
                f"(reference); {self.tolerated} unpaired at a near-tie, {self.unexplained} unexplained")


def layouts(graph):
    """{version: detection layout} of every detection list the net produces."""
    out = {}
    for node in graph.nodes:
        fn = getattr(handler_for(node.type), "detection_layout", None)
        if fn is not None:
            out.update({t: fn(node, i) for i, t in enumerate(node.tops)})
    return out


def valid_rows(arr, layout):
    """The rows of a detection blob without padding, as a 2-D array."""
    rows = np.asarray(arr, np.float64).reshape(-1, layout["width"])
    if layout["pad"] == "label":
        return rows[rows[:, layout["label"]] != -1]
    period = len(rows)
    for i in range(1, len(rows)):
        if np.array_equal(rows[i:], rows[:len(rows) - i]):
            period = i
            break
    rows = rows[:period]
    box = layout.get("box")
    if box is not None:
        rows = rows[~np.all(rows[:, box[0]:box[1]] == -1, axis=1)]
    elif layout.get("score") is not None:
        rows = rows[rows[:, layout["score"]] != -1]
    return rows


def _group(rows, layout):
    keys = [layout[k] for k in ("image", "label") if layout.get(k) is not None]
    return [tuple(r[keys]) for r in rows]


def _scale(values):
    """A column's typical magnitude: the median, which a few huge boxes do not move (the mean
    for a column of mostly zeros, such as coordinates clipped to the image's edge)."""
    v = np.abs(values)
    typical = float(np.median(v)) if v.size else 0.0
    if typical == 0 and v.size:
        typical = float(v.mean())
    return max(typical, np.finfo(np.float64).tiny)


def pair_rows(actual, reference, layout):
    """[(actual index, reference index)], and the unpaired indices of each side."""
    box, score = layout.get("box"), layout.get("score")
    cols = ([] if box is None else list(range(*box))) + ([] if score is None else [score])
    scale = np.array([_scale(reference[:, c]) for c in cols])
    free = {}  # (image, label) -> unpaired actual rows
    for i, key in enumerate(_group(actual, layout)):
        free.setdefault(key, []).append(i)
    pairs = []
    for j, key in enumerate(_group(reference, layout)):
        cand = free.get(key)
        if not cand:
            continue
        a, b = actual[cand][:, cols], reference[j, cols]
        with np.errstate(over="ignore", invalid="ignore"):
            dist = np.max(np.abs(a - b) / np.maximum(np.abs(b), scale), axis=1)
        k = int(np.argmin(dist))
        if dist[k] <= PAIR:
            pairs.append((cand.pop(k), j))
    used_r = {j for _, j in pairs}
    return pairs, sorted(i for rest in free.values() for i in rest), [j for j in range(len(reference))
                                                                        if j not in used_r]


def _explained(row, rows_same_side, other_side, layout):
    """Is an unpaired row's presence a near-tied decision (see the module docstring)?"""
    score = layout.get("score")
    if score is None:
        return False
    image = layout.get("image")
    both = np.vstack([rows_same_side, other_side]) if len(other_side) else rows_same_side
    mine = both if image is None else both[both[:, image] == row[image]]
    tie = TIE * max(float(np.max(np.abs(mine[:, score]))) if len(mine) else 0.0, np.finfo(np.float64).tiny)
    s = row[score]
    marks = [mine[:, score].min()] if len(mine) else []
    if layout.get("threshold") is not None:
        marks.append(layout["threshold"])
    label = layout.get("label")
    same = mine if label is None else mine[mine[:, label] == row[label]]
    others = same[:, score][~np.all(same == row, axis=1)]
    return bool(any(abs(s - m) <= tie for m in marks) or np.any(np.abs(others - s) <= tie))


def compare_detections(actual, reference, layout):
    """(DetectionDiff, pairs) of two detection blobs (any padding, any row count)."""
    a, r = valid_rows(actual, layout), valid_rows(reference, layout)
    pairs, free_a, free_r = pair_rows(a, r, layout)
    tolerated = sum(_explained(a[i], a, r, layout) for i in free_a) + sum(_explained(r[j], r, a, layout)
                                                                          for j in free_r)
    unexplained = len(free_a) + len(free_r) - tolerated
    if pairs:
        d = compare(a[[i for i, _ in pairs]], r[[j for _, j in pairs]])
    else:
        d = Diff(True, 0.0, 0.0, 1.0, True, 0.0)
    bad = float("inf") if unexplained else None
    return DetectionDiff(shape_ok=True, max_abs=bad or d.max_abs, max_rel=bad or d.max_rel, cosine=d.cosine,
                         nonfinite_ok=d.nonfinite_ok, rms=d.rms, paired=len(pairs), actual_rows=len(a),
                         reference_rows=len(r), tolerated=tolerated, unexplained=unexplained,
                         distinct_scores=0 if layout.get("score") is None else
                         len(np.unique(r[:, layout["score"]]))), pairs


def row_followers(graph, shapes, detection_layouts):
    """{version: the list it follows} for versions computed row by row from a cycle-padded list
    (ROIPooling and the head after the rois): same leading dimension, downstream of it."""
    out = {}
    for v, layout in detection_layouts.items():
        if layout.get("pad") != "cycle" or layout["rows_axis"] != 0:
            continue
        tracked, rows = {v}, shapes[v][0]
        for node in graph.nodes:
            if any(b in tracked for b in node.bottoms):
                for t in node.tops:
                    if shapes[t][:1] == (rows,) and t not in detection_layouts:
                        tracked.add(t)
                        out.setdefault(t, v)
    return out


def pad_rows(value, shape, layout):
    """A reference list with fewer rows than the converted layer makes, padded as the layer
    pads (its kept rows repeated in order), so it can feed the converted layers after it."""
    rows = valid_rows(value, layout).astype(np.float32)
    n = int(shape[layout["rows_axis"]]) if layout["rows_axis"] == 0 else None
    if n is None or len(rows) == 0 or layout.get("pad") != "cycle":
        return np.asarray(value, np.float32)
    return rows[np.arange(n) % len(rows)].reshape(shape)
