"""Graph pictures (graphviz DOT, rendered to SVG by `dot`) of a Caffe net and its MXNet symbol.

Nodes are grouped by their '/'-separated name prefix. A page that would show more than
`max_units` nodes collapses each prefix group into one node linking to that group's own
page (a separate SVG), recursively, so Attention-452 stays readable: its overview shows
one node per attention module, each opening onto its trunk and mask branches.
The DOT text is written here, with every name escaped, so any Caffe name is safe.
"""
import json
import shutil
import subprocess
from dataclasses import dataclass, field

from caffe2mx.converter.emit import owner_of

from .safe_names import safe_stem

COLOURS = {"pass": "#c8e6c9", "diverges": "#ef5350", "drift": "#ff8a65", "inherited": "#ffcc80", None: "#f5f5f5"}
STATUS_RANK = {"diverges": 4, "drift": 3, "inherited": 2, "pass": 1, None: 0}
MAX_UNITS = 80


class GraphvizMissing(RuntimeError):
    """`dot` is not installed (Debian/Ubuntu: apt-get install graphviz)."""


@dataclass
class GNode:
    id: str
    name: str
    lines: list
    status: str = None
    tooltip: str = ""
    shape: str = "box"


@dataclass
class GGraph:
    title: str
    nodes: list = field(default_factory=list)
    edges: list = field(default_factory=list)  # (src id, dst id, label)


def _shape_text(shape):
    return "x".join(str(int(d)) for d in shape)


def caffe_graph(graph, shapes, layer_status=None):
    """One node per Caffe layer (type and output shape) and per net input; edges are blobs."""
    layer_status = layer_status or {}
    g = GGraph(title=graph.name or "net")
    producer = {}
    for i, b in enumerate(graph.inputs):
        nid = f"i{i}"
        producer[b] = nid
        g.nodes.append(GNode(nid, graph.caffe_blob(b), [graph.caffe_blob(b), "input", _shape_text(shapes[b])],
                             shape="ellipse"))
    for node in graph.nodes:
        nid = f"n{node.index}"
        status, err = layer_status.get(node.name, (None, None))
        out = " ".join(_shape_text(shapes[t]) for t in node.tops if t in shapes)
        tip = f"{node.name} ({node.type}) line {node.line}" + (f"; max_rel {err:.3g}" if err is not None else "")
        g.nodes.append(GNode(nid, node.name, [node.name, node.type, out], status=status, tooltip=tip))
        for b in node.bottoms:
            if b in producer:
                g.edges.append((producer[b], nid, ""))
        for t in node.tops:
            producer[t] = nid
    return g


def mxnet_graph(symbol, name_map):
    """One node per MXNet operator (parameters left out), grouped under the Caffe layer it came from."""
    data = json.loads(symbol.tojson())
    inputs = set(name_map.get("inputs", {}).values())
    g = GGraph(title=f"{name_map.get('net') or 'net'} (MXNet)")
    keep = {}
    for i, n in enumerate(data["nodes"]):
        if n["op"] == "null" and n["name"] not in inputs:
            continue
        layer = None if n["op"] == "null" else owner_of(name_map, n["name"])  # inputs show their blob name
        keep[i] = f"m{i}"
        g.nodes.append(GNode(f"m{i}", layer or n["name"], [n["name"], "input" if n["op"] == "null" else n["op"]],
                             shape="ellipse" if n["op"] == "null" else "box"))
        for src in n.get("inputs", []):
            if src[0] in keep:
                g.edges.append((keep[src[0]], f"m{i}", ""))
    return g


def _esc(text):
    return str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "")


def _members(g, prefix):
    if not prefix:
        return list(g.nodes)
    return [n for n in g.nodes if n.name == prefix or n.name.startswith(prefix + "/")]


def _unit_key(name, depth):
    return "/".join(name.split("/")[: depth + 1])


def page_name(prefix):
    return "index.svg" if not prefix else f"group-{safe_stem(prefix)}.svg"


def build_pages(g, max_units=MAX_UNITS, link_prefix="", root_link=None):
    """{prefix: DOT text} for the overview ('') and every collapsed group, each page at most ~max_units nodes.

    Group pages link back to their parent page; `root_link` is the overview seen from a group page.
    """
    root_link = root_link or "../index.svg"
    pages = {}
    todo = [("", 0, None)]
    while todo:
        prefix, depth, parent = todo.pop()
        members = _members(g, prefix)
        units = {}
        if len(members) <= max_units:
            units = {n.id: [n] for n in members}
        else:
            for n in members:
                units.setdefault(_unit_key(n.name, depth), []).append(n)
            while len(units) == 1 and depth < 64:
                depth += 1
                units = {}
                for n in members:
                    units.setdefault(_unit_key(n.name, depth), []).append(n)
        units = _expand_small(units, max_units)
        groups = {k: ns for k, ns in units.items() if len(ns) > 1}
        for k in groups:
            todo.append((k, depth + 1, prefix))
        back = None if parent is None else (parent, root_link if parent == "" else page_name(parent))
        pages[prefix] = _page_dot(g, prefix, units, groups, link_prefix if not prefix else "", back)
    return pages


def _expand_small(units, max_units):
    """Open the smallest groups in place while the page stays within max_units nodes."""
    total = len(units)
    opened = set()
    for k, ns in sorted(units.items(), key=lambda kv: len(kv[1])):
        if len(ns) > 1 and total + len(ns) - 1 <= max_units:
            opened.add(k)
            total += len(ns) - 1
    out = {}
    for k, ns in units.items():
        if k in opened:
            out.update({n.id: [n] for n in ns})
        else:
            out[k] = ns
    return out


def _page_dot(g, prefix, units, groups, link_prefix, back=None):
    unit_of, uid = {}, {}
    for j, (k, ns) in enumerate(units.items()):
        uid[k] = f"u{j}"
        for n in ns:
            unit_of[n.id] = k
    node_by_id = {n.id: n for n in g.nodes}
    title = g.title if not prefix else f"{g.title}: {prefix}"
    out = ["digraph G {", f'  graph [rankdir=TB, fontname="Helvetica", fontsize=12, label="{_esc(title)}", labelloc=t];',
           '  node [fontname="Helvetica", fontsize=10, style=filled];', '  edge [color="#607d8b", arrowsize=0.6];']
    if back is not None:
        label = "back to " + (back[0] or "the overview")
        out.append(f'  back [shape=note, label="{_esc(label)}", URL="{_esc(back[1])}", target="_top", '
                   f'fillcolor="#e3f2fd", class="back"];')
    for k, ns in units.items():
        if k in groups:
            worst = max((n.status for n in ns), key=lambda s: STATUS_RANK[s])
            label = f"{k}\n{len(ns)} layers"
            out.append(f'  {uid[k]} [shape=box3d, label="{_esc(label)}", fillcolor="{COLOURS[worst]}", '
                       f'URL="{_esc(link_prefix + page_name(k))}", target="_top", '
                       f'tooltip="{_esc("open " + k)}", class="group", penwidth=2];')
        else:
            n = ns[0]
            lines = list(n.lines)
            if prefix and lines[0].startswith(prefix + "/"):
                lines[0] = "…" + lines[0][len(prefix):]
            out.append(f'  {uid[k]} [shape={n.shape}, label="{_esc(chr(10).join(lines))}", '
                       f'fillcolor="{COLOURS[n.status]}", tooltip="{_esc(n.tooltip or n.name)}", class="layer"];')
    externals, seen = {}, set()
    for s, d, _ in g.edges:
        su, du = unit_of.get(s), unit_of.get(d)
        if su is None and du is None:
            continue
        if su is not None and su == du:
            continue
        if su is None:
            key = ("from", node_by_id[s].name)
        elif du is None:
            key = ("to", node_by_id[d].name)
        else:
            key = None
        if key is not None and key not in externals:
            externals[key] = f"x{len(externals)}"
            out.append(f'  {externals[key]} [shape=plaintext, style="", label="{_esc(key[0] + " " + key[1])}", '
                       f'fontcolor="#607d8b"];')
        a = uid[su] if su is not None else externals[key]
        b = uid[du] if du is not None else externals[key]
        if (a, b) not in seen:
            seen.add((a, b))
            out.append(f"  {a} -> {b};")
    out.append("}")
    return "\n".join(out) + "\n"


def have_dot():
    return shutil.which("dot") is not None


def render_svg(dot_text, timeout=120):
    """SVG text of a DOT graph via the `dot` program."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing("graphviz's `dot` program is not installed (Debian/Ubuntu: apt-get install graphviz)")
    proc = subprocess.run([exe, "-Tsvg"], input=dot_text.encode("utf-8"), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"dot failed: {proc.stderr.decode('utf-8', 'replace').strip()[:500]}")
    svg = proc.stdout.decode("utf-8")
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def write_pages(pages, root_path, group_dir):
    """Render the overview to `root_path` and every group page into `group_dir` (flat, safe names).

    Build the pages with link_prefix = group_dir's name + "/" so the overview's links resolve.
    """
    from pathlib import Path
    root_path, group_dir = Path(root_path), Path(group_dir)
    written = {}
    for prefix, dot in pages.items():
        if prefix:
            group_dir.mkdir(parents=True, exist_ok=True)
            path = group_dir / page_name(prefix)
        else:
            path = root_path
        path.write_text(render_svg(dot), encoding="utf-8")
        written[prefix] = path
    return written


def render_to(g, directory, stem, max_units=MAX_UNITS):
    """DIR/STEM.svg (overview), DIR/STEM/*.svg (groups) and DIR/STEM.dot; returns the overview SVG text."""
    from pathlib import Path
    directory = Path(directory)
    pages = build_pages(g, max_units=max_units, link_prefix=f"{stem}/", root_link=f"../{stem}.svg")
    (directory / f"{stem}.dot").write_text(pages[""], encoding="utf-8")
    written = write_pages(pages, directory / f"{stem}.svg", directory / stem)
    return written[""].read_text(encoding="utf-8"), len(pages) - 1
