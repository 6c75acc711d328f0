"""Per-layer table of a net: type, output shape, parameter count, multiply-adds.

Counting convention: parameters are every value stored in the layer's blobs (for BN
that includes the running mean and inverse std/variance; BatchNorm's scale-factor blob
is counted too), i.e. the "all" convention of the architecture facts. Multiply-adds
count Convolution, Deconvolution and InnerProduct only.
"""
import numpy as np

from .caffemodel import read_caffemodel
from .layers import handler_for
from .weights import bind_weights


def inspect_net(net, caffemodel=None):
    """Rows for a `Net` (pipeline.read_net); with a caffemodel its blobs are checked too."""
    graph, shapes = net.graph, net.shapes
    if caffemodel is not None:
        graph = bind_weights(graph, shapes, read_caffemodel(caffemodel), caffemodel_path=str(caffemodel))
    rows = []
    for node in graph.nodes:
        h = handler_for(node.type)
        ins = [shapes[b] for b in node.bottoms]
        outs = [shapes[t] for t in node.tops]
        blob_shapes = h.blob_shapes(node, ins)
        rows.append({"name": node.name, "type": node.type, "output_shape": list(outs[0]) if outs else [],
                     "params": int(sum(int(np.prod(s)) for s in blob_shapes)),
                     "macs": int(h.macs(node, ins, outs))})
    return rows


def totals(rows):
    return {"params": sum(r["params"] for r in rows), "macs": sum(r["macs"] for r in rows), "layers": len(rows)}


def format_table(rows, title=None):
    name_w = min(max([len(r["name"]) for r in rows] + [5]), 60)
    type_w = max([len(r["type"]) for r in rows] + [4])
    lines = [title] if title else []
    head = f"{'layer':<{name_w}}  {'type':<{type_w}}  {'output shape':<20}  {'params':>12}  {'mult-adds':>15}"
    lines += [head, "-" * len(head)]
    for r in rows:
        shape = "x".join(str(d) for d in r["output_shape"])
        lines.append(f"{r['name'][:name_w]:<{name_w}}  {r['type']:<{type_w}}  {shape:<20}  {r['params']:>12,}  "
                     f"{r['macs']:>15,}")
    t = totals(rows)
    lines.append("-" * len(head))
    lines.append(f"{'total (' + str(t['layers']) + ' layers)':<{name_w + type_w + 24}}  {t['params']:>12,}  "
                 f"{t['macs']:>15,}")
    lines.append(f"= {t['params'] / 1e6:.3f}M parameters (all stored values), {t['macs'] / 1e9:.2f}G multiply-adds")
    return "\n".join(lines)
