"""The error-along-depth plot: an inline SVG drawn here, no script and no external file."""
import math
from html import escape

COLOURS = {"pass": "#2e7d32", "diverges": "#c62828", "drift": "#d84315", "inherited": "#ef6c00"}
LOG_MIN, LOG_MAX = -12, 2


def _y_of(value):
    if value != value or value == float("inf"):
        return LOG_MAX
    if value <= 0:
        return LOG_MIN
    return min(max(math.log10(value), LOG_MIN), LOG_MAX)


def error_plot(rows, rtol, width=900, height=280):
    """log10(max relative error) per compared blob, in net order. `--strict`: one tolerance, a dashed
    line. Per layer (rows with a drift): dots are each layer's own error, short red ticks its
    tolerance; the grey line is the end-to-end drift, the dashed red line its float32 bound."""
    left, right, top, bottom = 56, 12, 14, 34
    pw, ph = width - left - right, height - top - bottom
    n = max(len(rows), 1)

    def px(i):
        return left + (pw * (i + 0.5) / n)

    def py(v):
        return top + ph * (LOG_MAX - _y_of(v)) / (LOG_MAX - LOG_MIN)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="errplot" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="max relative error along the depth of the net">',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#bdbdbd"/>']
    for e in range(LOG_MIN, LOG_MAX + 1, 2):
        y = top + ph * (LOG_MAX - e) / (LOG_MAX - LOG_MIN)
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eeeeee"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">1e{e}</text>')
    per_layer = any(getattr(r, "drift", None) is not None for r in rows)
    if not per_layer and rtol is not None:
        ty = py(rtol)
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#c62828" '
                     f'stroke-dasharray="6 4"/><text x="{left + pw - 4}" y="{ty - 4:.1f}" text-anchor="end" '
                     f'font-size="11" fill="#c62828">tolerance {rtol:g}</text>')
        if len(rows) > 1:
            path = " ".join(f"{'M' if i == 0 else 'L'}{px(i):.1f},{py(r.diff.max_rel):.1f}" for i, r in enumerate(rows))
            parts.append(f'<path d="{path}" fill="none" stroke="#90a4ae" stroke-width="1"/>')
    elif per_layer:
        drift = [(i, r.drift.max_rel) for i, r in enumerate(rows) if r.drift is not None]
        bound = [(i, r.drift_bound) for i, r in enumerate(rows) if r.drift_bound]
        for series, style in ((drift, 'stroke="#90a4ae" stroke-width="1"'),
                              (bound, 'stroke="#c62828" stroke-width="1" stroke-dasharray="4 3"')):
            if len(series) > 1:
                path = " ".join(f"{'M' if k == 0 else 'L'}{px(i):.1f},{py(v):.1f}" for k, (i, v) in enumerate(series))
                parts.append(f'<path d="{path}" fill="none" {style}/>')
        for i, r in enumerate(rows):
            if r.rtol:
                parts.append(f'<line x1="{px(i) - 2:.1f}" x2="{px(i) + 2:.1f}" y1="{py(r.rtol):.1f}" '
                             f'y2="{py(r.rtol):.1f}" stroke="#e57373"/>')
    for i, r in enumerate(rows):
        who = escape(f"#{r.index} {r.layer or '(input)'} ({r.layer_type}) {r.version}: max_rel {r.diff.max_rel:.3g}")
        parts.append(f'<circle cx="{px(i):.1f}" cy="{py(r.diff.max_rel):.1f}" r="2.6" '
                     f'fill="{COLOURS[r.status]}"><title>{who}</title></circle>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle" font-size="12">'
                 f'compared blobs in net order (0 = input, {len(rows) - 1} = last)</text>')
    parts.append(f'<text x="14" y="{top + ph / 2}" transform="rotate(-90 14 {top + ph / 2})" '
                 f'text-anchor="middle" font-size="12">max relative error</text>')
    parts.append("</svg>")
    return "\n".join(parts)
