"""Compare a converted model with a reference, unit by unit, as the net runs.

Default (per layer): every unit (usually one Caffe layer, see units.py) runs in MXNet
twice. Fed the reference's own bottoms (teacher forcing), its output measures that
layer's conversion alone, held to the tolerance float32 allows that layer
(metrics.layer_tolerance). Fed MXNet's own earlier outputs (free running), the units
chain into the whole net; its distance from the float64 reference is the drift, held to
what float32 itself forces there: the NumPy reference run in float32 on the same input.
`strict`: the earlier blob-by-blob mode, free-running values against one threshold
(--rtol, default CHAIN_RTOL).

Nothing is held longer than needed: each value is dropped after its last reader, and
comparisons happen as values appear (metrics.compare_many works in small chunks). Float64
is kept only for the reference chain the judgement rests on.
"""
import contextlib
import os
import threading
from dataclasses import dataclass, field

import numpy as np

from .detections import compare_detections, layouts, pad_rows, row_followers
from .diagnose import diagnose_unit
from .local import local_check
from .metrics import (CHAIN_RTOL, FLOAT32_REFERENCE_ENGINES, Diff, compare, compare_many, drift_bound,
                      escalated_tolerance, layer_tolerance, rtol_for)
from .mxnet_pieces import PieceError
from .numpy_ref.forward import feeds_for, run_node, run_nodes
from .units import comparison_units, last_needed, reduction_length

PASS, DIVERGES, INHERITED, DRIFT = "pass", "diverges", "inherited", "drift"
MAX_KEPT_ARRAYS = 8          # failing points whose arrays a report may write
MAX_KEPT_ELEMENTS = 4_000_000
#: MXNet runs consecutive units as one segment (one call teacher forced, one free running) up to
#: this many values made in it: few calls, and a bounded number of values held at once
SEGMENT_ELEMENTS = 1 << 21
SEGMENT_UNITS = 256


@dataclass
class Row:
    index: int
    version: str          # blob id in the graph
    blob: str             # Caffe blob name
    layer: str            # producing layer, None for a net input
    layer_type: str
    line: int
    suspects: list        # the unit's layers: between the measured inputs and this point, in order
    inputs: list          # measured versions the unit reads
    shape: tuple
    ref_shape: tuple
    diff: object          # per layer: the layer's own error (teacher forced); strict: free running
    rtol: float           # the threshold `diff` is held to
    status: str
    tainted: bool = False  # downstream of a failing point
    drift: object = None       # free-running Diff against the reference (per-layer mode)
    drift32: float = None      # NumPy float32 run's max_rel from float64 here
    drift_bound: float = None  # what the drift may reach
    float32_error: float = None  # NumPy float32 error of this unit on the same inputs, where it was needed
    note: str = ""

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
    strict: bool = False
    diagnosis: object = None   # diagnose.Diagnosis of the first wrong unit
    local: object = None       # strict: Diff of the first diverging layer re-run alone in NumPy
    notes: list = field(default_factory=list)
    arrays: dict = field(default_factory=dict)  # version -> {"actual", "reference", ...} of failing points

    @property
    def passed(self):
        return self.first is None and all(r.passed for r in self.rows)

    def row(self, version):
        return next((r for r in self.rows if r.version == version), None)

    def counts(self):
        out = {PASS: 0, DIVERGES: 0, INHERITED: 0, DRIFT: 0}
        for r in self.rows:
            out[r.status] += 1
        return out

    def worst_drift(self):
        """(drift / bound, row) of the free-running point nearest its bound, or None."""
        judged = [(r.drift.max_rel / r.drift_bound, r) for r in self.rows
                  if r.drift is not None and r.drift_bound and r.status in (PASS, DRIFT) and not r.tainted]
        return max(judged, key=lambda x: x[0], default=None)


class _Fallback(Exception):
    """A segment cannot run in one call: run its units one by one."""


def measured_versions(graph, name_map, reference):
    """{version id: Caffe blob name} of the points both sides hold, and whether per version."""
    mapped = name_map.get("versions", {})
    if reference.kind == "numpy":
        produced = list(graph.inputs) + [t for n in graph.nodes for t in n.tops]
        return {v: graph.caffe_blob(v) for v in produced if v in mapped}, True
    points = {}
    for name in reference.blobs:
        vid = graph.final_version.get(name)
        if vid is not None and vid in mapped:
            points[vid] = name
    return points, False


class ComparisonRun:
    """One pass over the net: reference, MXNet pieces, comparisons, verdict."""

    def __init__(self, net, pieces, name_map, reference, inputs, *, bn_blob3="inv_std", strict=False, rtol=None,
                 type_rtol=None, progress=None, parallel=None):
        self.graph, self.shapes = net.graph, net.shapes
        self.pieces, self.name_map, self.reference = pieces, name_map, reference
        self.inputs = inputs
        self.options = {"bn_blob3": bn_blob3}
        self.strict, self.rtol, self.type_rtol = strict, rtol, dict(type_rtol or {})
        self.say = progress or (lambda m: None)
        self.parallel = (os.cpu_count() or 1) > 1 if parallel is None else parallel
        self.numpy_source = reference.kind == "numpy"
        self.engines = 1 if self.numpy_source else FLOAT32_REFERENCE_ENGINES
        self.node_of = {n.name: n for n in self.graph.nodes}
        self.detection_layouts = {v: l for v, l in layouts(self.graph).items() if l is not None}
        self.row_followers = row_followers(self.graph, self.shapes, self.detection_layouts)
        self.free_pairs = {}  # detection list -> row pairs of its free-running value
        points, self.per_version = measured_versions(self.graph, name_map, reference)
        self.units = comparison_units(self.graph, set(points))
        self.last = last_needed(self.graph, self.units)
        self.use64 = self.numpy_source or not strict   # the float64 NumPy chain
        self.use32 = not strict                         # the float32 NumPy chain (drift bound)
        self.np64, self.np32, self.free, self.feed32, self.ref_cache = {}, {}, {}, {}, {}
        self.drift32_of, self.taint = {}, {}
        self.rows, self.notes, self.arrays = [], [], {}
        self.first, self.diagnosis, self.local = None, None, None
        self.unmatched = sorted(n for n in reference.blobs if n not in name_map["blobs"])
        self.missing = sorted(n for n in name_map["blobs"] if n not in reference.blobs)

    # -- values ----------------------------------------------------------------------------
    def ref_value(self, v):
        if self.numpy_source:
            return self.np64[v]
        if v not in self.ref_cache:
            self.ref_cache[v] = np.asarray(self.reference.blobs[self.graph.caffe_blob(v)])
        return self.ref_cache[v]

    def feed(self, v):
        if v not in self.feed32:
            value = np.asarray(self.ref_value(v), np.float32)
            layout = self.detection_layouts.get(v)
            if layout is not None and value.shape != tuple(self.shapes[v]):
                value = pad_rows(value, self.shapes[v], layout)  # a dump's kept rows, padded as converted
            self.feed32[v] = value
        return self.feed32[v]

    def _release(self, versions):
        for v in versions:
            for chain in (self.np64, self.np32, self.free, self.feed32, self.ref_cache):
                chain.pop(v, None)

    def _numpy_step(self, node):
        for chain, dtype, feeds, on in ((self.np64, np.float64, self._feeds64, self.use64),
                                        (self.np32, np.float32, self._feeds32, self.use32)):
            if not on or chain is None:
                continue
            try:
                outs = run_node(node, [chain[b] for b in node.bottoms], dtype=dtype, options=self.options,
                                feeds=feeds, file=self.graph.file)
            except Exception as exc:
                if self.numpy_source and dtype is np.float64:
                    raise  # the reference itself
                self._numpy_failed(node, exc, dtype)
                return
            chain.update(zip(node.tops, outs))

    def _numpy_failed(self, node, exc, dtype):
        """The NumPy chains only bound the drift (and, for a stored reference, are not the reference):
        without them the drift is reported but not judged."""
        self.use32 = False
        self.np32.clear()
        if not self.numpy_source:
            self.use64 = False
            self.np64.clear()
        self.notes.append(f"no float32 drift bound past layer '{node.name}' ({node.type}): the NumPy reference "
                          f"cannot run it in {np.dtype(dtype).name} ({str(exc).splitlines()[0]})")

    # -- the run ---------------------------------------------------------------------------
    def run(self):
        graph = self.graph
        self._feeds64 = feeds_for(graph, self.inputs, np.float64) if self.use64 else {}
        self._feeds32 = feeds_for(graph, self.inputs, np.float32) if self.use32 else {}
        measured = {v for u in self.units for v in u.tops} | {v for u in self.units for v in u.bottoms}
        for node in graph.input_nodes():
            self._numpy_step(node)
            for t in node.tops:
                self.free[t] = np.asarray(self.inputs[graph.caffe_blob(t)], np.float32)
                if t in measured:
                    self._input_row(t)
        release_at = {}
        for v, i in self.last.items():
            release_at.setdefault(i, []).append(v)
        position = {n.name: i for i, n in enumerate(graph.nodes)}
        segments = self._segments(position)
        ends = [position[seg[-1].node.name] for seg in segments]
        parallel = self.parallel and len(segments) > 1
        with _one_blas_thread() if parallel else contextlib.nullcontext():
            self._compare_segments(graph, segments, ends, release_at, _NumpyAhead(self, ends) if parallel else None)
        for chain in (self.np64, self.np32, self.free, self.feed32, self.ref_cache):
            chain.clear()
        first = next((r for r in self.rows if r.status == DIVERGES), None)
        if first is None:
            first = next((r for r in self.rows if r.status == DRIFT), None)
        return Outcome(rows=self.rows, first=first, unmatched_reference=self.unmatched,
                       not_in_reference=self.missing, per_version=self.per_version,
                       rtol=(CHAIN_RTOL if self.rtol is None else self.rtol) if self.strict else self.rtol,
                       strict=self.strict, diagnosis=self.diagnosis, local=self.local, notes=self.notes,
                       arrays=self.arrays)

    def _compare_segments(self, graph, segments, ends, release_at, ahead):
        """Each segment: its NumPy steps (or the worker thread's, `ahead`), MXNet, comparisons."""
        pos, n = 0, len(graph.nodes)
        try:
            for k, seg in enumerate(segments):
                end = ends[k]
                self.say(f"comparing layers {pos + 1}-{end + 1} of {n}")
                if ahead is None:
                    for i in range(pos, end + 1):
                        self._numpy_step(graph.nodes[i])
                else:
                    ahead.wait(k)
                self._segment(seg)
                for i in range(pos, end + 1):
                    self._release(release_at.get(i, ()))
                if ahead is not None:
                    ahead.done(k)
                pos = end + 1
        finally:
            if ahead is not None:
                ahead.stop()

    def _segments(self, position):
        """Consecutive units, each group making at most SEGMENT_ELEMENTS values (or one unit)."""
        segs, cur, size, start = [], [], 0, 0
        for u in self.units:
            end = position[u.node.name]
            made = sum(int(np.prod(self.shapes[t])) for node in self.graph.nodes[start:end + 1] for t in node.tops)
            if cur and (size + made > SEGMENT_ELEMENTS or len(cur) >= SEGMENT_UNITS):
                segs.append(cur)
                cur, size = [], 0
            cur.append(u)
            size += made
            start = end + 1
        if cur:
            segs.append(cur)
        return segs

    def _segment(self, seg):
        """Run a segment's units in two MXNet calls; unit by unit where that fails (to say which)."""
        if len(seg) == 1:
            self._unit(seg[0])
            return
        layers = list(dict.fromkeys(name for u in seg for name in u.layers))
        bottoms = list(dict.fromkeys(b for u in seg for b in u.bottoms))
        tops = [t for u in seg for t in u.tops]
        try:
            forced = None
            if not self.strict:
                piece = self.pieces.piece(layers, bottoms, tops, forced=True)
                forced = dict(zip(tops, piece({b: self.feed(b) for b in piece.needed})))
            piece = self.pieces.piece(layers, bottoms, tops)
            if not all(self._free_ok(b) for b in piece.needed):
                raise _Fallback()
            free = dict(zip(tops, piece({b: self.free[b] for b in piece.needed})))
        except Exception:
            for u in seg:
                self._unit(u)
            return
        for u in seg:
            self._unit(u, ([forced[t] for t in u.tops] if forced else None, [free[t] for t in u.tops], None))

    def _free_ok(self, b):
        value = self.free.get(b)
        return value is not None and value.shape == tuple(self.shapes[b])

    def _input_row(self, v):
        """A net input: what MXNet was fed against what the reference holds (a dump's own copy)."""
        graph = self.graph
        ref = self.ref_value(v)
        d = compare(self.free[v], ref)
        tol = self._strict_tol("Input") if self.strict else layer_tolerance("Input", 1, self.type_rtol, self.rtol)
        status = PASS if d.passed(tol) else DIVERGES
        self.taint[v] = status != PASS
        self.drift32_of[v] = 0.0
        self.rows.append(Row(index=len(self.rows), version=v, blob=graph.caffe_blob(v), layer=None,
                             layer_type="Input", line=None, suspects=[], inputs=[],
                             shape=tuple(np.shape(self.free[v])), ref_shape=tuple(np.shape(ref)), diff=d, rtol=tol,
                             status=status, drift=None if self.strict else d,
                             note="" if status == PASS else "the input fed to MXNet differs from the reference's"))

    def _strict_tol(self, layer_type):
        return rtol_for(layer_type, self.type_rtol, CHAIN_RTOL if self.rtol is None else self.rtol)

    def _unit_tolerance(self, unit):
        """(tolerance, set by the user?): the sum of its layers' own tolerances, or the user's threshold."""
        user = self.rtol is not None or any(self.node_of[l].type in self.type_rtol for l in unit.layers)
        tols = []
        for name in unit.layers:
            node = self.node_of[name]
            tols.append(layer_tolerance(node.type, reduction_length(node, self.shapes), self.type_rtol, self.rtol))
        if user:
            return max(tols), True
        return self.engines * sum(tols), False

    def _unit(self, unit, outputs=None):
        """Rows for one unit's measured tops; `outputs` (forced, free, error) when its segment ran."""
        tainted_in = any(self.taint.get(b, False) for b in unit.bottoms)
        forced, free, error = outputs or self._run_piece(unit, all(self._free_ok(b) for b in unit.bottoms))
        tol, user = self._unit_tolerance(unit)
        for k, t in enumerate(unit.tops):
            ref = self.ref_value(t)
            got = forced[k] if forced is not None else None
            fr = free[k] if free is not None else None
            self.free[t] = fr
            if self.strict:
                self._strict_row(unit, t, ref, fr, tainted_in, error)
            else:
                self._row(unit, t, ref, got, fr, tol, user, tainted_in, error)

    def _run_piece(self, unit, free_ok):
        """(forced outputs, free outputs, error message): an MXNet failure is this unit's failure."""
        try:
            piece = self.pieces.piece(unit.layers, unit.bottoms, unit.tops, forced=True)
        except PieceError as exc:
            return None, None, str(exc)
        except Exception as exc:
            return None, None, _mx_message(exc)
        forced = free = None
        try:
            if not self.strict:
                forced = piece({b: self.feed(b) for b in piece.needed})
            if free_ok:
                free = piece({b: self.free[b] for b in piece.needed})
        except Exception as exc:
            return forced, None, _mx_message(exc)
        return forced, free, None

    def _row(self, unit, t, ref, got, fr, tol, user, tainted_in, error):
        arrays = [a for a in (got, fr) if a is not None]
        d32_array = self.np32.get(t) if self.use32 else None
        if self.numpy_source and d32_array is not None:
            arrays.append(d32_array)
        diffs = self._compare(t, ref, arrays, free=(1 if got is not None else 0) if fr is not None else None)
        it = iter(diffs)
        own = next(it) if got is not None else _FAILED
        drift = next(it) if fr is not None else None
        drift32 = None
        if d32_array is not None:
            drift32 = next(it).max_rel if self.numpy_source else (
                compare(d32_array, self.np64[t]).max_rel if t in self.np64 else None)
        float32_error = None
        ok = got is not None and own.passed(tol)
        if got is not None and not ok and not user and own.shape_ok and own.nonfinite_ok:
            float32_error = self._float32_error(unit, t)
            if float32_error is not None:
                tol = escalated_tolerance(tol, float32_error, self.engines)
                ok = own.passed(tol)
        bound = None
        if drift32 is not None:
            floor = max([tol] + [self.drift32_of.get(b) or 0.0 for b in unit.bottoms])
            bound = drift_bound(drift32, floor, self.engines)
            if self.rtol is not None:
                bound = max(bound, self.rtol)
            self.drift32_of[t] = drift32
        if not ok:
            status = DIVERGES
        elif drift is not None and bound is not None and not drift.passed(bound):
            status = INHERITED if tainted_in else DRIFT
        elif drift is None and tainted_in:
            status = INHERITED
        else:
            status = PASS
        row = self._make_row(unit, t, ref, got if got is not None else fr, own, tol, status, tainted_in,
                             drift=drift, drift32=drift32, drift_bound=bound, float32_error=float32_error,
                             note=error or ("" if fr is not None or not tainted_in else
                                            "not run free: an earlier output is missing or misshapen"))
        if status != PASS:
            self._keep(row, got, fr, ref)
        if status == DIVERGES and self.diagnosis is None:
            self.diagnosis = diagnose_unit(self, unit, t, own, tol, error, got)

    def _strict_row(self, unit, t, ref, fr, tainted_in, error):
        node = unit.node
        tol = self._strict_tol(node.type)
        d = self._compare(t, ref, [fr], free=0)[0] if fr is not None else _FAILED
        ok = fr is not None and d.passed(tol)
        status = PASS if ok else (INHERITED if tainted_in else DIVERGES)
        row = self._make_row(unit, t, ref, fr, d, tol, status, tainted_in, note=error or "")
        if status != PASS:
            self._keep(row, fr, None, ref)
        if status == DIVERGES and self.local is None and len(unit.layers) == 1 and fr is not None:
            self.local = local_check(node, [self.free[b] for b in node.bottoms], [self.free.get(x) for x in node.tops],
                                     options=self.options, feeds=self._feeds64, file=self.graph.file)

    def _compare(self, t, ref, arrays, free=None):
        """Diffs of `arrays` against the reference value of version `t` (`arrays[free]` is the
        free-running value): element-wise, except for a detection list (a handler's
        `detection_layout`), whose rows are paired by content, and for the rows made from such a
        list: a forced value was made from the reference's own rows, in its order (a dump's kept
        rows come first); a free-running one is taken in the order its list was paired."""
        if not arrays:
            return []
        layout = self.detection_layouts.get(t)
        if layout is not None:
            diffs = []
            for k, a in enumerate(arrays):
                d, pairs = compare_detections(a, ref, layout)
                if k == free:
                    self.free_pairs[t] = pairs
                diffs.append(d)
            return diffs
        source = self.row_followers.get(t)
        if source is None:
            return compare_many(ref, arrays, cosine=[k == 0 for k in range(len(arrays))])
        diffs = []
        for k, a in enumerate(arrays):
            a = np.asarray(a)
            if k == free and self.free_pairs.get(source):
                pairs = self.free_pairs[source]
                diffs.append(compare(a[[i for i, _ in pairs]], np.asarray(ref)[[j for _, j in pairs]]))
            else:
                rows = np.shape(ref)[0]
                diffs.append(compare(a[:rows] if a.shape[1:] == np.shape(ref)[1:] else a, ref))
        return diffs

    def _make_row(self, unit, t, ref, actual, diff, tol, status, tainted_in, **extra):
        node = unit.node
        self.taint[t] = tainted_in or status != PASS
        row = Row(index=len(self.rows), version=t, blob=self.graph.caffe_blob(t), layer=node.name,
                  layer_type=node.type, line=node.line, suspects=list(unit.layers), inputs=list(unit.bottoms),
                  shape=tuple(np.shape(actual)) if actual is not None else (), ref_shape=tuple(np.shape(ref)),
                  diff=diff, rtol=tol, status=status, tainted=tainted_in, **extra)
        self.rows.append(row)
        return row

    def _float32_error(self, unit, t):
        """NumPy's own float32 error for this unit on the same (float32-rounded) bottoms, against float64."""
        nodes = [self.node_of[name] for name in unit.layers]
        kw = dict(options=self.options, file=self.graph.file)
        try:
            f32 = run_nodes(nodes, {b: self.feed(b) for b in unit.bottoms}, dtype=np.float32,
                            feeds=self._feeds32 or feeds_for(self.graph, self.inputs, np.float32), **kw)[t]
            if self.numpy_source:
                f64 = self.np64[t]
            else:
                f64 = run_nodes(nodes, {b: np.asarray(self.ref_value(b), np.float64) for b in unit.bottoms},
                                dtype=np.float64, feeds=self._feeds64 or feeds_for(self.graph, self.inputs),
                                **kw)[t]
        except Exception:
            return None
        d = compare(f32, f64)
        return d.max_rel if d.shape_ok and d.nonfinite_ok else None

    def _keep(self, row, actual, free, ref):
        if len(self.arrays) >= MAX_KEPT_ARRAYS or actual is None or np.size(ref) > MAX_KEPT_ELEMENTS:
            return
        kept = {"actual": np.asarray(actual, np.float32), "reference": np.asarray(ref, np.float32)}
        if free is not None and not self.strict:
            kept["free_running"] = np.asarray(free, np.float32)
        self.arrays[row.version] = kept


def _one_blas_thread():
    """While the NumPy reference runs beside MXNet, BLAS gets one thread: the two already fill
    the cores, and OpenBLAS's idle threads spin (sched_yield) against them. On 2 cores this
    took Attention-92's verify from about 4 s of system time to 1 s (benchmarks/verify.py)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency; only slower without it
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class _NumpyAhead:
    """The NumPy reference chains, computed in a worker thread while MXNet and the comparisons of
    the segment before run (NumPy and MXNet both release the GIL): at most one segment ahead,
    so no more values are held than two segments make."""

    def __init__(self, run, ends):
        self.run, self.ends = run, ends
        self.ready = [threading.Event() for _ in ends]
        self.slots = threading.Semaphore(2)
        self.error, self.stopped = None, False
        self.thread = threading.Thread(target=self._work, name="numpy-reference", daemon=True)
        self.thread.start()

    def _work(self):
        start = 0
        try:
            for k, end in enumerate(self.ends):
                self.slots.acquire()
                if self.stopped:
                    return
                for i in range(start, end + 1):
                    self.run._numpy_step(self.run.graph.nodes[i])
                start = end + 1
                self.ready[k].set()
        except BaseException as exc:  # handed to the caller's thread
            self.error = exc
            for e in self.ready:
                e.set()

    def wait(self, k):
        self.ready[k].wait()
        if self.error is not None:
            raise self.error

    def done(self, k):
        self.slots.release()

    def stop(self):
        self.stopped = True
        self.slots.release()
        self.thread.join()


#: the Diff of a unit MXNet could not run: nothing matches
_FAILED = Diff(False, float("inf"), float("inf"), float("nan"), False, float("nan"))


def _mx_message(exc):
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return f"MXNet could not run it: {text}"
