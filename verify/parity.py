"""Compare a converted model's activations with a reference, blob by blob, in net order.

A comparison point is a blob version (`x`, `x@1` after an in-place layer, ...). A Caffe
dump only holds the final version of each blob, so between two measured points there
may be several layers (conv -> BN -> ReLU in place): those are the suspects named when
that point is where the outputs part. A failing point whose measured inputs all pass
is where the conversion diverges; a failing point downstream of one only inherits it.
"""
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .detections import detection_diffs
from .metrics import CHAIN_RTOL, compare, rtol_for

PASS, DIVERGES, INHERITED = "pass", "diverges", "inherited"


@dataclass
class Row:
    index: int
    version: str          # blob id in the graph
    blob: str             # Caffe blob name
    layer: str            # producing layer, None for a net input
    layer_type: str
    line: int
    suspects: list        # layers between the measured inputs and this point, in order
    inputs: list          # versions of the measured points this one is computed from
    shape: tuple
    ref_shape: tuple
    diff: object
    rtol: float
    status: str
    tainted: bool = False  # downstream of a failing point

    @property
    def passed(self):
        return self.status == PASS


@dataclass
class Outcome:
    rows: list
    first: Row = None
    unmatched_reference: list = field(default_factory=list)  # reference blobs with no MXNet counterpart
    not_in_reference: list = field(default_factory=list)     # mapped blobs the reference lacks
    per_version: bool = False
    rtol: float = CHAIN_RTOL

    @property
    def passed(self):
        return self.first is None and all(r.passed for r in self.rows)

    def row(self, version):
        return next((r for r in self.rows if r.version == version), None)

    def counts(self):
        out = {PASS: 0, DIVERGES: 0, INHERITED: 0}
        for r in self.rows:
            out[r.status] += 1
        return out


def comparison_points(graph, name_map, reference):
    """{version id: reference array} for every point both sides have, and whether per version."""
    mapped_versions = name_map.get("versions", {})
    if reference.versions:
        points = {v: a for v, a in reference.versions.items() if v in mapped_versions}
        return points, True
    points = {}
    for name, arr in reference.blobs.items():
        vid = graph.final_version.get(name)
        if vid is not None and name in name_map["blobs"]:
            points[vid] = arr
    return points, False


def _producers(graph):
    return {t: n for n in graph.nodes for t in n.tops}


def _diffs(versions, actual, points, workers=None):
    """compare() of every point; NumPy frees the GIL on big arrays, so threads use every core."""
    workers = workers or min(4, os.cpu_count() or 1)
    if workers < 2 or len(versions) < 8:
        return {v: compare(actual[v], points[v]) for v in versions}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(versions, pool.map(lambda v: compare(actual[v], points[v]), versions)))


def compare_points(graph, actual, points, *, rtol=None, type_rtol=None):
    """Rows in net order for the points in both `actual` and `points` (both keyed by version)."""
    measured = [v for v in points if v in actual]
    diffs = _diffs(measured, actual, points)
    diffs.update(detection_diffs(graph, actual, points))  # detection lists: rows paired by content
    measured = set(measured)
    producer = _producers(graph)
    order = list(graph.inputs) + [t for n in graph.nodes for t in n.tops]
    anc, sus, taint = {}, {}, {}
    rows = []
    for vid in order:
        node = producer.get(vid)
        if node is None:
            anc_in, sus_in, taint_in = [], [], False
        else:
            anc_in, sus_in, taint_in = [], [], False
            for b in node.bottoms:
                for a in ([b] if b in measured else anc.get(b, [])):
                    if a not in anc_in:
                        anc_in.append(a)
                if b not in measured:
                    sus_in += [s for s in sus.get(b, []) if s not in sus_in]
                taint_in = taint_in or taint.get(b, False)
            sus_in = sus_in + ([node.name] if node.name not in sus_in else [])
        if vid not in measured:
            anc[vid], sus[vid], taint[vid] = anc_in, sus_in, taint_in
            continue
        layer_type = node.type if node else "Input"
        tol = rtol_for(layer_type, type_rtol, CHAIN_RTOL if rtol is None else rtol)
        out, ref = actual[vid], points[vid]
        diff = diffs[vid]
        ok = diff.passed(tol)
        status = PASS if ok else (INHERITED if taint_in else DIVERGES)
        rows.append(Row(index=len(rows), version=vid, blob=graph.caffe_blob(vid),
                        layer=node.name if node else None, layer_type=layer_type,
                        line=node.line if node else None, suspects=sus_in, inputs=anc_in,
                        shape=tuple(np.shape(out)), ref_shape=tuple(np.shape(ref)), diff=diff, rtol=tol,
                        status=status, tainted=taint_in))
        anc[vid], sus[vid], taint[vid] = [vid], [], taint_in or not ok
    return rows


def run_parity(graph, name_map, actual, reference, *, rtol=None, type_rtol=None):
    """The whole comparison: rows, first divergence, blobs only one side has."""
    points, per_version = comparison_points(graph, name_map, reference)
    rows = compare_points(graph, actual, points, rtol=rtol, type_rtol=type_rtol)
    first = next((r for r in rows if r.status == DIVERGES), None)
    unmatched = sorted(n for n in reference.blobs if n not in name_map["blobs"])
    missing = sorted(n for n in name_map["blobs"] if n not in reference.blobs)
    return Outcome(rows=rows, first=first, unmatched_reference=unmatched, not_in_reference=missing,
                   per_version=per_version, rtol=CHAIN_RTOL if rtol is None else rtol)


def versions_to_run(graph, name_map, reference):
    """The version ids whose MXNet value is needed for this reference."""
    points, _ = comparison_points(graph, name_map, reference)
    return list(points)


def version_name_map(name_map, versions):
    """A name map whose `blobs` are keyed by version id, for mxnet_run.run_blobs."""
    table = name_map["versions"]
    return dict(name_map, blobs={v: table[v]["mxnet"] for v in versions if v in table})
