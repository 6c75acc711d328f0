"""`verify --report DIR`: one self-contained HTML page plus report.json with the same data.

Everything written under DIR gets a name made by safe_names (never a blob or layer name
as given), so a name like `../../x` or `/etc/x` cannot place a file outside DIR.
"""
import datetime
import json
from html import escape
from pathlib import Path
from string import Template

import numpy as np

from caffe2mx.converter.errors import UsageError

from . import graphs
from .metrics import DRIFT_FACTOR, ESCALATION
from .parity import DIVERGES, DRIFT, INHERITED
from .plot import error_plot
from .safe_names import safe_path
from .table import drift_text, first_wrong_text, local_text

TEMPLATE = Path(__file__).with_name("templates") / "report.html"
MAX_ARRAY_FILES = 8
MAX_ARRAY_ELEMENTS = 4_000_000


def _num(x):
    if x is None:
        return None
    return None if x != x else (x if abs(x) != float("inf") else str(x))


def row_dict(r):
    d = r.diff
    out = {"index": r.index, "layer": r.layer, "type": r.layer_type, "line": r.line, "blob": r.blob,
           "version": r.version, "shape": list(r.shape), "reference_shape": list(r.ref_shape),
           "shape_ok": d.shape_ok, "max_abs": _num(d.max_abs), "max_rel": _num(d.max_rel), "cosine": _num(d.cosine),
           "rms": _num(d.rms), "nonfinite_ok": d.nonfinite_ok, "rtol": _num(r.rtol), "status": r.status,
           "suspects": r.suspects, "inputs": r.inputs}
    if r.drift is not None or r.drift_bound is not None:
        out.update(drift_max_rel=None if r.drift is None else _num(r.drift.max_rel), drift_bound=_num(r.drift_bound),
                   float32_drift=_num(r.drift32))
    if r.float32_error is not None:
        out["numpy_float32_error"] = _num(r.float32_error)
    if r.note:
        out["note"] = r.note
    return out


def _diagnosis_dict(dx):
    if dx is None:
        return None
    return {"layer": dx.layer, "type": dx.layer_type, "line": dx.line, "unit": dx.unit, "version": dx.version,
            "parts": [dict(p, max_rel=_num(p["max_rel"])) for p in dx.parts], "findings": dx.findings,
            "hint": dx.hint,
            "inputs": [{"version": v, "drift_max_rel": None if d is None else _num(d.max_rel), "drift_bound": _num(b),
                        "status": st} for v, d, b, st in dx.inputs]}


def report_data(run):
    o = run.outcome
    first = None
    if o.first is not None:
        first = dict(row_dict(o.first), input_rows=[row_dict(o.row(v)) for v in o.first.inputs if o.row(v)],
                     alone_on_mxnet_inputs=None if run.local is None else
                     {"max_rel": _num(run.local.max_rel), "shape_ok": run.local.shape_ok,
                      "verdict": local_text(run.local)},
                     diagnosis=_diagnosis_dict(o.diagnosis),
                     text=None if o.strict else first_wrong_text(o))
    return {
        "format": "caffe2mx-verify/2",
        "mode": "strict" if o.strict else "per-layer",
        "passed": o.passed,
        "net": run.graph.name,
        "prototxt": run.prototxt,
        "caffemodel": run.caffemodel,
        "model_prefix": run.model_prefix,
        "seeded_weights": run.name_map.get("seeded_weights"),
        "reference": {"kind": run.reference.kind, "meta": run.reference.meta},
        "input": run.input_source,
        "per_version": o.per_version,
        "counts": o.counts(),
        "rtol": o.rtol,
        "first_divergence": first,
        "rows": [row_dict(r) for r in o.rows],
        "not_in_reference": o.not_in_reference,
        "reference_only": o.unmatched_reference,
        "adjustments": run.name_map.get("adjustments", []),
        "timings_s": run.timings,
        "peak_rss_mb": getattr(run, "peak_rss_mb", {}),
        "drift": None if o.strict else drift_text(o),
        "notes": o.notes,
    }


def layer_status(outcome):
    """Caffe layer -> (status, max_rel) for colouring: every suspect of a point takes its status."""
    out = {}
    for r in outcome.rows:
        for layer in r.suspects or ([r.layer] if r.layer else []):
            out[layer] = (r.status, r.diff.max_rel)
    return out


def _fmt(x):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return "nan" if x != x else f"{x:.3g}"


def _fmt_cos(x):
    return "nan" if x is None or x != x else f"{x:.6f}"


def _summary_html(data, run):
    c = data["counts"]
    meta = data["reference"]["meta"]
    caffe = f" (Caffe {meta['caffe_version']})" if meta.get("caffe_version") else ""
    scope = "every in-place step" if data["per_version"] else "final values"
    items = [("net", data["net"]), ("prototxt", data["prototxt"]),
             ("weights", data["caffemodel"] or f"seeded (seed {data['seeded_weights']})"),
             ("reference", data["reference"]["kind"] + caffe),
             ("input", f"{data['input']} (saved as inputs.npz: give it to the Caffe dump script with --input)"),
             ("compared", f"{len(data['rows'])} blobs ({scope})"),
             ("result", f"{c['pass']} pass, {c['diverges']} {'diverge' if data['mode'] == 'strict' else 'wrong'}, "
                        f"{c['drift']} drift past float32, {c['inherited']} inherit an earlier error"),
             ("tolerance", (f"max relative error ≤ {data['rtol']:g} end to end, blob by blob (--strict)"
                            if data["mode"] == "strict" else
                            "per layer, fed the reference's own inputs: 2^-24 × a per-type constant × √(reduction "
                            f"length), or {ESCALATION}× the NumPy float32 error of the same layer (table: tolerance); "
                            f"end to end: the free-running drift within {DRIFT_FACTOR}× the NumPy float32 run's "
                            f"(table: bound)")
                           + "; floor of the relative error: the reference blob's RMS"),
             ("time", ", ".join(f"{k} {v:.2f} s" for k, v in data["timings_s"].items()))]
    if data.get("drift"):
        items.append(("end to end", data["drift"]))
    if data["adjustments"]:
        items.append(("adjustments", "; ".join(f"{a['layer']}: {a['message']}" for a in data["adjustments"])))
    if data["reference"]["meta"].get("fork_layer_types"):
        items.append(("fork layer types", ", ".join(data["reference"]["meta"]["fork_layer_types"])))
    return '<dl class="summary">' + "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in items) + "</dl>"


def _first_html(data):
    f = data["first_divergence"]
    if f is not None and f.get("text"):
        return '<div class="first">' + "<br>".join(escape(t) for t in f["text"]) + "</div>"
    if f is None:
        return '<p class="first" style="border-color:#2e7d32;background:#f1f8e9">No divergence: every compared blob ' \
               'is within tolerance.</p>'
    lines = [f"<b>First divergence:</b> layer <code>{escape(f['layer'] or '')}</code> ({escape(f['type'])}, "
             f"line {f['line']}), output <code>{escape(f['version'])}</code>: max rel {_fmt(f['max_rel'])}, "
             f"cosine {_fmt_cos(f['cosine']) if not isinstance(f['cosine'], str) else f['cosine']}"
             + ("" if f["shape_ok"] else f", shape {f['shape']} vs reference {f['reference_shape']}")]
    if len(f["suspects"]) > 1:
        lines.append("The reference only shows this blob after layers " +
                     ", ".join(f"<code>{escape(s)}</code>" for s in f["suspects"]) + ": one of them differs.")
    for i in f["input_rows"]:
        lines.append(f"input <code>{escape(i['version'])}</code>: max rel {_fmt(i['max_rel'])} ({i['status']})")
    if f.get("alone_on_mxnet_inputs"):
        lines.append(escape(f["alone_on_mxnet_inputs"]["verdict"]))
    return '<div class="first">' + "<br>".join(lines) + "</div>"


def _rows_html(data, array_files):
    out = []
    for r in data["rows"]:
        shape = "x".join(map(str, r["shape"])) + ("" if r["shape_ok"] else " ≠ " + "x".join(map(str, r["reference_shape"])))
        link = array_files.get(r["version"])
        arrays = f'<a href="{escape(link)}">npz</a>' if link else ""
        cells = [str(r["index"]), escape(r["layer"] or "(input)"), escape(r["type"]), str(r["line"] or ""),
                 escape(r["version"]), shape]
        nums = [_fmt(r["max_abs"]), _fmt(r["max_rel"]),
                r["cosine"] if isinstance(r["cosine"], str) else _fmt_cos(r["cosine"]), _fmt(r["rtol"]),
                _fmt(r.get("drift_max_rel")), _fmt(r.get("drift_bound"))]
        out.append(f'<tr class="{r["status"]}">' + "".join(f"<td>{c}</td>" for c in cells)
                   + "".join(f'<td class="num">{escape(n)}</td>' for n in nums)
                   + f'<td>{r["status"]}</td><td>{arrays}</td></tr>')
    return "\n".join(out)


def _write_arrays(run, directory, actual_of):
    """actual / reference / |diff| of the failing points, one .npz each under a safe name."""
    written = {}
    kept = run.outcome.arrays
    rows = [r for r in run.outcome.rows if r.status in (DIVERGES, DRIFT, INHERITED)][:MAX_ARRAY_FILES]
    for r in rows:
        a = actual_of(r.version)
        b = kept.get(r.version, {}).get("reference")
        if a is None or b is None or np.size(b) > MAX_ARRAY_ELEMENTS:
            continue
        directory.mkdir(parents=True, exist_ok=True)
        path = safe_path(directory, r.version, ".npz")
        arrays = {"actual": np.asarray(a), "reference": np.asarray(b)}
        if "free_running" in kept.get(r.version, {}):
            arrays["free_running"] = kept[r.version]["free_running"]
        if np.shape(a) == np.shape(b):
            arrays["abs_diff"] = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).astype(np.float32)
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        written[r.version] = f"{directory.name}/{path.name}"
    return written


def write_report(run, directory, actual=None):
    """Write DIR/index.html, DIR/report.json, the graph SVGs and failing arrays; returns their paths."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--report {directory}: cannot create the directory ({exc})") from None
    data = report_data(run)
    actual = actual if actual is not None else run.actual
    array_files = _write_arrays(run, directory / "arrays", actual.get)
    with open(directory / "inputs.npz", "wb") as fh:  # feed this to the Caffe dump script to compare there
        np.savez(fh, **{name: np.asarray(v, np.float32) for name, v in run.inputs.items()})
    graph_html, mxnet_link, notes = _graphs(run, directory)
    data["graph_notes"] = notes
    (directory / "report.json").write_text(json.dumps(data, indent=1, allow_nan=False, default=str), encoding="utf-8")
    from caffe2mx.converter.version import VERSION as __version__
    page = Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        title=escape(data["net"] or Path(run.prototxt).name), verdict="PASS" if data["passed"] else "FAIL",
        verdict_class="pass" if data["passed"] else "fail", version=escape(__version__),
        generated=escape(datetime.datetime.now().isoformat(timespec="seconds")),
        summary=_summary_html(data, run), first=_first_html(data),
        plot=error_plot(run.outcome.rows, run.outcome.rtol), graph=graph_html, mxnet_link=mxnet_link,
        rows=_rows_html(data, array_files),
        extra=("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>") if notes else "")
    html = directory / "index.html"
    html.write_text(page, encoding="utf-8")
    return {"html": str(html), "json": str(directory / "report.json"), "inputs": str(directory / "inputs.npz"),
            "arrays": list(array_files.values())}


def _graphs(run, directory):
    notes = []
    if not graphs.have_dot():
        notes.append("graph pictures left out: graphviz's `dot` is not installed (apt-get install graphviz)")
        return '<p class="note">(no graph: graphviz not installed)</p>', "", notes
    g = graphs.caffe_graph(run.graph, run.shapes, layer_status(run.outcome))
    svg, n_groups = graphs.render_to(g, directory, "caffe")
    mx_link = ""
    try:
        graphs.render_to(graphs.mxnet_graph(run.symbol, run.name_map), directory, "mxnet")
        mx_link = 'The converted MXNet symbol: <a href="mxnet.svg">mxnet.svg</a>.'
    except Exception as exc:  # the Caffe graph matters more; say why the MXNet one is missing
        notes.append(f"MXNet graph left out: {exc}")
    if n_groups:
        notes.append(f"the Caffe graph is grouped by layer-name prefix into {n_groups} linked pages (caffe/)")
    return svg, mx_link, notes
