"""Pure graph -> graph passes."""
from dataclasses import dataclass, replace


def fuse_batchnorm_scale(graph):
    """BatchNorm immediately followed by a per-channel Scale becomes one `_BatchNormScale` node.

    Only when nothing else can observe BatchNorm's output: the Scale is its sole reader
    and writes the same Caffe blob in place, so the blob Caffe holds afterwards is the
    Scale's output either way.
    """
    consumers = graph.consumers()
    nodes, skip = [], set()
    by_index = list(graph.nodes)
    for i, node in enumerate(by_index):
        if node.name in skip:
            continue
        nxt = by_index[i + 1] if i + 1 < len(by_index) else None
        if (node.type == "BatchNorm" and nxt is not None and nxt.type == "Scale" and len(nxt.bottoms) == 1
                and nxt.bottoms[0] == node.tops[0] and len(consumers.get(node.tops[0], ())) == 1
                and graph.caffe_blob(nxt.tops[0]) == graph.caffe_blob(node.tops[0])
                and nxt.param.scale_param.axis == 1 and nxt.param.scale_param.num_axes == 1):
            fused = replace(node, type="_BatchNormScale", tops=nxt.tops, fused=(node, nxt))
            nodes.append(fused)
            skip.add(nxt.name)
            continue
        nodes.append(node)
    return graph.with_nodes(nodes)


# -- inference optimisation passes (converter/optimize.py runs them in order) -----------------------
# Each takes a weighted graph (nodes carry .blobs) and returns a new graph plus a record of what it
# changed; nodes are replaced, never mutated, and LayerParameters are copied before any change.


@dataclass(frozen=True)
class Folding:
    """One Caffe layer that the optimised graph no longer runs as its own node.

    `how`: "weights" (a per-channel affine folded into the producer's weights and bias),
    "affine" (a layer turned into the per-channel affine node `into`, itself), "identity" (a
    copy dropped, `into` None: readers read its bottom).
    `blobs`: blob versions that no longer exist as MXNet outputs.
    """

    layer: str
    type: str
    into: str
    how: str
    blobs: tuple = ()


def _members(node):
    """The Caffe layers a graph node stands for (a fused BatchNorm+Scale is two)."""
    return node.fused or (node,)


def _handler(node):
    from .layers import handler_for
    return handler_for(node.type)


def remove_identities(graph, shapes):
    """Drop layers whose handler says every top equals the bottom (Split, Dropout, one-bottom
    Concat, same-size Interp, identity Power); their readers read the bottom instead.

    A layer whose top is a net output is kept (the output must stay a node of its own).
    Returns (graph, foldings, aliases {removed blob id: blob id that holds the same value}).
    """
    outputs = set(graph.outputs())
    alias, nodes, foldings = {}, [], []
    for node in graph.nodes:
        bottoms = tuple(alias.get(b, b) for b in node.bottoms)
        node = node if bottoms == node.bottoms else replace(node, bottoms=bottoms)
        if (len(node.bottoms) == 1 and not outputs.intersection(node.tops)
                and _handler(node).identity(node, [shapes[b] for b in node.bottoms])):
            for t in node.tops:
                alias[t] = node.bottoms[0]
            foldings.append(Folding(node.name, node.type, None, "identity", tuple(node.tops)))
            continue
        nodes.append(node)
    return graph.with_nodes(nodes), foldings, alias


def fold_affine_into_producers(graph, shapes, options):
    """A layer that is a fixed per-channel affine (frozen BN, BatchNorm(+Scale) with global
    statistics, per-channel Scale/Bias), reading the only top of a Convolution, Deconvolution
    or InnerProduct that nothing else reads, is folded into that layer's weights and bias.

    The folded layer takes the affine's place in the net and writes its tops; chains
    (BatchNorm then a separate Scale) fold one after the other. Returns (graph, foldings).
    """
    outputs = set(graph.outputs())
    readers = graph.consumers()
    producer = {}
    slots = list(graph.nodes)
    foldings = []
    for i, node in enumerate(graph.nodes):
        host_i = producer.get(node.bottoms[0]) if len(node.bottoms) == 1 else None
        host = slots[host_i] if host_i is not None else None
        b = node.bottoms[0] if node.bottoms else None
        affine = None
        if (host is not None and len(host.tops) == 1 and b not in outputs
                and [r.name for r in readers.get(b, ())] == [node.name]):
            affine = _handler(node).channel_affine(node, [shapes[b]], options)
        folded = None
        if affine is not None:
            folded = _handler(host).fold_affine(host, [shapes[x] for x in host.bottoms], *affine)
        if folded is None:
            for t in node.tops:
                producer[t] = i
            continue
        param, blobs = folded
        slots[host_i] = None
        slots[i] = replace(host, param=param, blobs=tuple(blobs), tops=node.tops)
        for t in node.tops:
            producer[t] = i
        for m in _members(node):
            foldings.append(Folding(m.name, m.type, host.name, "weights", (b,) if m is _members(node)[0] else ()))
    return graph.with_nodes(n for n in slots if n is not None), foldings


def affine_to_channel_affine(graph, shapes, options):
    """Every remaining fixed per-channel affine layer becomes a `_ChannelAffine` node holding
    (scale, shift) in float64: one pass over the data however the layer was written (the
    fork BN's statistics, BatchNorm+Scale, Scale or Bias). Returns (graph, foldings)."""
    nodes, foldings = [], []
    for node in graph.nodes:
        affine = None
        if len(node.bottoms) == 1 and node.type != "_ChannelAffine":
            affine = _handler(node).channel_affine(node, [shapes[node.bottoms[0]]], options)
        if affine is None:
            nodes.append(node)
            continue
        nodes.append(replace(node, type="_ChannelAffine", blobs=tuple(affine), fused=()))
        for m in _members(node):
            foldings.append(Folding(m.name, m.type, node.name, "affine"))
    return graph.with_nodes(nodes), foldings
