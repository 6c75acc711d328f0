"""Pure graph -> graph passes."""
from dataclasses import replace


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
