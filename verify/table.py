"""The terminal view of a comparison: a compact table and a verdict."""
from .metrics import DEFAULT_RTOL
from .parity import DIVERGES, INHERITED, PASS

MAX_INHERITED_SHOWN = 10


def _fmt(x):
    if x != x:
        return "nan"
    if x in (float("inf"), float("-inf")):
        return "inf"
    return f"{x:.2e}"


def _shape(s):
    return "x".join(str(d) for d in s) or "scalar"


def _clip(text, width):
    return text if len(text) <= width else text[: width - 1] + "~"


def row_line(r):
    layer = r.layer or "(input)"
    shape = _shape(r.shape) if r.diff.shape_ok else f"{_shape(r.shape)}!={_shape(r.ref_shape)}"
    mark = {PASS: "ok", DIVERGES: "DIVERGES", INHERITED: "inherited"}[r.status]
    return (f"{r.index:4d}  {_clip(layer, 28):28s} {_clip(r.layer_type, 12):12s} {_clip(r.version, 24):24s} "
            f"{_clip(shape, 18):18s} {_fmt(r.diff.max_abs):>9s} {_fmt(r.diff.max_rel):>9s} "
            f"{r.diff.cosine:9.6f}  {mark}")


HEADER = (f"{'#':>4s}  {'layer':28s} {'type':12s} {'blob':24s} {'shape':18s} {'max_abs':>9s} "
          f"{'max_rel':>9s} {'cosine':>9s}  status")


def local_text(local):
    if local is None:
        return None
    if local.passed(DEFAULT_RTOL):
        return (f"run alone on MXNet's own inputs, this layer matches the NumPy reference (max_rel "
                f"{_fmt(local.max_rel)}): the error built up over earlier layers (float32 drift), see --rtol")
    return (f"run alone on MXNet's own inputs, this layer still differs from the NumPy reference (max_rel "
            f"{_fmt(local.max_rel)}{'' if local.shape_ok else ', shapes differ'}): its conversion is wrong")


def first_divergence_text(outcome, local=None):
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
    for v in r.inputs:
        i = outcome.row(v)
        if i is not None:
            lines.append(f"  input  '{i.blob}' [{i.version}]: max_rel {_fmt(i.diff.max_rel)}, "
                         f"cosine {i.diff.cosine:.6f}: {i.status}")
    if local_text(local):
        lines.append("  " + local_text(local))
    return lines


def render(run, show_all=False):
    o = run.outcome
    c = o.counts()
    lines = [f"compared {len(o.rows)} blob{'s' if len(o.rows) != 1 else ''} "
             f"({'every in-place step' if o.per_version else 'final values'}) against {run.reference.kind}: "
             f"{c[PASS]} pass, {c[DIVERGES]} diverge, {c[INHERITED]} inherit an earlier error"]
    shown = o.rows if show_all else [r for r in o.rows if r.status == DIVERGES]
    inherited = [r for r in o.rows if r.status == INHERITED]
    if not show_all:
        shown = sorted(shown + inherited[:MAX_INHERITED_SHOWN], key=lambda r: r.index)
    if shown:
        lines += ["", HEADER] + [row_line(r) for r in shown]
        if not show_all and len(inherited) > MAX_INHERITED_SHOWN:
            lines.append(f"      ... {len(inherited) - MAX_INHERITED_SHOWN} more inherited failures (--all shows every blob)")
    if o.first is not None:
        lines += [""] + first_divergence_text(o, run.local)
    if o.not_in_reference:
        lines.append(f"not in the reference ({len(o.not_in_reference)}): "
                     + ", ".join(o.not_in_reference[:8]) + (" ..." if len(o.not_in_reference) > 8 else ""))
    if o.unmatched_reference:
        lines.append(f"reference blobs with no MXNet counterpart ({len(o.unmatched_reference)}, e.g. Caffe splits): "
                     + ", ".join(o.unmatched_reference[:5]) + (" ..." if len(o.unmatched_reference) > 5 else ""))
    lines.append("PASS" if o.passed else "FAIL")
    return "\n".join(lines)
