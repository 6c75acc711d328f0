"""Which layers are judged together, and when each value can be dropped.

A comparison point is a blob version both sides hold: MXNet (the name map's `versions`)
and the reference (every version for the NumPy reference, the final value of each blob
for a Caffe dump). A unit is what lies between points: the layers from the unit's
measured bottoms to its measured tops. Usually one layer; a BatchNorm whose output MXNet
never forms (fused with its Scale) joins the Scale, and against a Caffe dump, whose blobs
hold only their last in-place value, a conv -> BN -> ReLU chain is one unit.
"""
from dataclasses import dataclass

from caffe2mx.converter.layers import handler_for


@dataclass(frozen=True)
class Unit:
    index: int
    node: object    # the graph node whose tops are measured here (the unit's last layer)
    layers: tuple   # layer names, in net order
    bottoms: tuple  # measured versions the unit reads
    tops: tuple     # measured versions it produces


def comparison_units(graph, measured):
    """Units in net order for the measured versions (a set of version ids)."""
    sus, anc = {}, {}
    units = []
    for node in graph.nodes:
        layers, bottoms = [], []
        for b in node.bottoms:
            if b in measured:
                _add(bottoms, [b])
            else:
                _add(bottoms, anc.get(b, []))
                _add(layers, sus.get(b, []))
        _add(layers, [node.name])
        tops = [t for t in node.tops if t in measured]
        for t in node.tops:
            if t not in measured:
                sus[t], anc[t] = layers, bottoms
        if tops:
            units.append(Unit(len(units), node, tuple(layers), tuple(bottoms), tuple(tops)))
    return units


def _add(seq, items):
    for x in items:
        if x not in seq:
            seq.append(x)


def last_needed(graph, units):
    """{version: index of the last node that needs it}, reading both the graph (a layer's
    bottoms) and the units (a unit's bottoms are read when its last node runs); a
    version is also needed by the node that makes it (to be compared)."""
    position = {n.name: i for i, n in enumerate(graph.nodes)}
    last = {}
    for i, n in enumerate(graph.nodes):
        for v in tuple(n.bottoms) + tuple(n.tops):
            last[v] = i
    for u in units:
        i = position[u.node.name]
        for v in u.bottoms:
            last[v] = max(last.get(v, -1), i)
    return last


def reduction_length(node, shapes):
    """The layer's reduction length from its handler (1 for a type without one)."""
    h = handler_for(node.type)
    if h is None:
        return 1
    return h.reduction_length(node, [shapes[b] for b in node.bottoms], [shapes[t] for t in node.tops])
