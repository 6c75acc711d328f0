"""The terminal view of a comparison: a compact table, what is wrong where, and a verdict."""
from .metrics import DEFAULT_RTOL
from .parity import DIVERGES, DRIFT, INHERITED, PASS

MAX_INHERITED_SHOWN = 10
MARKS = {PASS: "ok", DIVERGES: "WRONG", INHERITED: "inherited", DRIFT: "DRIFT"}
STRICT_MARKS = {PASS: "ok", DIVERGES: "DIVERGES", INHERITED: "inherited", DRIFT: "DRIFT"}


def _fmt(x):
    if x is None:
        return "-"
    if x != x:
        return "nan"
    if x in (float("inf"), float("-inf")):
        return "inf"
    return f"{x:.2e}"


def _shape(s):
    return "x".join(str(d) for d in s) or "scalar"


def _clip(text, width):
    return text if len(text) <= width else text[: width - 1] + "~"


def _shape_cell(r):
    if not r.shape and not r.diff.shape_ok:
        return "-"
    return _shape(r.shape) if r.diff.shape_ok else f"{_shape(r.shape)}!={_shape(r.ref_shape)}"


def row_line(r, strict=False):
    layer = r.layer or "(input)"
    head = (f"{r.index:4d}  {_clip(layer, 28):28s} {_clip(r.layer_type, 12):12s} {_clip(r.version, 24):24s} "
            f"{_clip(_shape_cell(r), 18):18s}")
    if strict:
        return (f"{head} {_fmt(r.diff.max_abs):>9s} {_fmt(r.diff.max_rel):>9s} {r.diff.cosine:9.6f}  "
                f"{STRICT_MARKS[r.status]}")
    drift = r.drift.max_rel if r.drift is not None else None
    return (f"{head} {_fmt(r.diff.max_rel):>9s} {_fmt(r.rtol):>9s} {_fmt(drift):>9s} {_fmt(r.drift_bound):>9s}  "
            f"{MARKS[r.status]}")


def header(strict=False):
    head = f"{'#':>4s}  {'layer':28s} {'type':12s} {'blob':24s} {'shape':18s}"
    if strict:
        return f"{head} {'max_abs':>9s} {'max_rel':>9s} {'cosine':>9s}  status"
    return f"{head} {'own':>9s} {'tol':>9s} {'drift':>9s} {'bound':>9s}  status"


HEADER = header(strict=True)


def local_text(local):
    """--strict: what re-running the diverging layer alone on MXNet's own inputs says."""
    if local is None:
        return None
    if local.passed(DEFAULT_RTOL):
        return (f"run alone on MXNet's own inputs, this layer matches the NumPy reference (max_rel "
                f"{_fmt(local.max_rel)}): the error built up over earlier layers (float32 drift), see --rtol")
    return (f"run alone on MXNet's own inputs, this layer still differs from the NumPy reference (max_rel "
            f"{_fmt(local.max_rel)}{'' if local.shape_ok else ', shapes differ'}): its conversion is wrong")


def _where(layer, layer_type, line):
    return f"'{layer}' ({layer_type})" + (f" line {line}" if line else "")


def first_wrong_text(outcome):
    """Per-layer mode: the first layer whose own conversion is wrong, or the first end-to-end failure."""
    r, dx = outcome.first, outcome.diagnosis
    if r is None:
        return []
    if r.status == DRIFT:
        return [f"end to end: '{r.blob}' [{r.version}] after layer {_where(r.layer, r.layer_type, r.line)} is "
                f"{_fmt(r.drift.max_rel)} from the float64 reference, more than float32 forces here (bound "
                f"{_fmt(r.drift_bound)}: {_fmt(r.drift32)} for the NumPy reference run in float32), while every "
                f"layer before it passes on its own inputs"]
    if dx is not None and dx.layer is not None:
        lines = [f"first wrong layer: {_where(dx.layer, dx.layer_type, dx.line)}"]
    else:
        lines = [f"first wrong layer: one of {', '.join(repr(s) for s in r.suspects)}"]
    if len(r.suspects) > 1:
        lines.append(f"  judged together at '{r.blob}' [{r.version}]: {', '.join(r.suspects)} "
                     f"(the reference holds no value between them)")
    own = r.diff
    if own.shape_ok:
        lines.append(f"  fed the reference's own inputs, its output '{r.blob}' [{r.version}] differs: max_rel "
                     f"{_fmt(own.max_rel)} (tolerance {r.rtol:.2g} from float32 arithmetic"
                     f"{'' if r.float32_error is None else f', NumPy float32 error {_fmt(r.float32_error)}'}), "
                     f"cosine {own.cosine:.6f}: its conversion is wrong")
    else:
        lines.append(f"  fed the reference's own inputs, its output '{r.blob}' [{r.version}] "
                     + (f"has shape {_shape(r.shape)}, the reference {_shape(r.ref_shape)}" if r.shape else
                        "could not be computed") + ": its conversion is wrong")
    if r.note:
        lines.append(f"  {r.note}")
    if dx is not None:
        for v, drift, bound, status in dx.inputs:
            if drift is not None and bound is not None:
                lines.append(f"  input  [{v}]: end-to-end drift {_fmt(drift.max_rel)} (bound {_fmt(bound)}): "
                             f"{'within float32' if status == PASS else status}")
            elif drift is not None and drift.max_rel > 0:
                lines.append(f"  input  [{v}]: end-to-end drift {_fmt(drift.max_rel)}")
        if r.drift is not None:
            lines.append(f"  output [{r.version}]: end-to-end drift {_fmt(r.drift.max_rel)}")
        for p in dx.parts:
            lines.append(f"  part '{p['layer']}' ({p['type']}) alone: max_rel {_fmt(p['max_rel'])} "
                         f"(tolerance {p['rtol']:.2g}): {'WRONG' if p['wrong'] else 'ok'}")
        lines += [f"  {f}" for f in dx.findings]
        if dx.hint:
            lines.append(f"  hint: {dx.hint}")
    return lines


def first_divergence_text(outcome, local=None):
    """--strict: the first blob past the threshold, its inputs, and the re-run alone."""
    r = outcome.first
    if r is None:
        return []
    where = f" (line {r.line})" if r.line else ""
    lines = [f"first divergence: layer '{r.layer}' ({r.layer_type}){where}, output blob '{r.blob}'"]
    if len(r.suspects) > 1:
        lines.append(f"  the reference only shows this blob after layers {', '.join(r.suspects)}: "
                     f"one of them differs")
    lines.append(f"  output: max_abs {_fmt(r.diff.max_abs)}, max_rel {_fmt(r.diff.max_rel)} (tolerance "
                 f"{r.rtol:g}), cosine {r.diff.cosine:.6f}"
                 + ("" if r.diff.shape_ok else f", shape {_shape(r.shape)} vs reference {_shape(r.ref_shape)}"))
    if r.note:
        lines.append(f"  {r.note}")
    for v in r.inputs:
        i = outcome.row(v)
        if i is not None:
            lines.append(f"  input  '{i.blob}' [{i.version}]: max_rel {_fmt(i.diff.max_rel)}, "
                         f"cosine {i.diff.cosine:.6f}: {i.status}")
    if local_text(local):
        lines.append("  " + local_text(local))
    return lines


def drift_text(outcome):
    """One line on the end-to-end drift: where it is nearest its float32 bound."""
    worst = outcome.worst_drift()
    if worst is None:
        return None
    ratio, r = worst
    return (f"end to end (free running): drift reaches {_fmt(r.drift.max_rel)} at '{r.blob}' [{r.version}], "
            f"{ratio:.2f}x its bound {_fmt(r.drift_bound)} (the NumPy reference in float32 drifts {_fmt(r.drift32)} "
            f"there)")


def summary_line(run):
    o = run.outcome
    c = o.counts()
    n = len(o.rows)
    scope = "every in-place step" if o.per_version else "final values"
    if o.strict:
        return (f"compared {n} blob{'s' if n != 1 else ''} ({scope}) against {run.reference.kind}, blob by blob "
                f"(--strict): {c[PASS]} pass, {c[DIVERGES]} diverge, {c[INHERITED]} inherit an earlier error")
    return (f"compared {n} blob{'s' if n != 1 else ''} ({scope}) against {run.reference.kind}, each layer fed the "
            f"reference's own inputs: {c[PASS]} pass, {c[DIVERGES]} wrong, {c[DRIFT]} drift past float32, "
            f"{c[INHERITED]} inherit an earlier error")


def render(run, show_all=False):
    o = run.outcome
    lines = [summary_line(run)]
    if not o.strict:
        text = drift_text(o)
        if text:
            lines.append(text)
    shown = o.rows if show_all else [r for r in o.rows if r.status in (DIVERGES, DRIFT)]
    inherited = [r for r in o.rows if r.status == INHERITED]
    if not show_all:
        shown = sorted(shown + inherited[:MAX_INHERITED_SHOWN], key=lambda r: r.index)
    if shown:
        lines += ["", header(o.strict)] + [row_line(r, o.strict) for r in shown]
        if not show_all and len(inherited) > MAX_INHERITED_SHOWN:
            lines.append(f"      ... {len(inherited) - MAX_INHERITED_SHOWN} more inherited failures (--all shows every blob)")
    if o.first is not None:
        lines += [""] + (first_divergence_text(o, o.local) if o.strict else first_wrong_text(o))
    for note in o.notes:
        lines.append(f"note: {note}")
    if o.not_in_reference:
        lines.append(f"not in the reference ({len(o.not_in_reference)}): "
                     + ", ".join(o.not_in_reference[:8]) + (" ..." if len(o.not_in_reference) > 8 else ""))
    if o.unmatched_reference:
        lines.append(f"reference blobs with no MXNet counterpart ({len(o.unmatched_reference)}, e.g. Caffe splits): "
                     + ", ".join(o.unmatched_reference[:5]) + (" ..." if len(o.unmatched_reference) > 5 else ""))
    lines.append("PASS" if o.passed else "FAIL")
    return "\n".join(lines)
