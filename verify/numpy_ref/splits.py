"""Caffe's automatic Split blobs: a blob version read by several layers is copied once
per reader, as `<blob>_<layer that wrote it>_<its top index>_split_<j>`."""


def split_names(graph, input_writers=None):
    """{split blob name: blob id it copies}, for every version with more than one reader.

    Net inputs are written by Caffe's `input` layer (what `input:` fields upgrade to); pass
    input_writers={input: (layer, top index)} for inputs declared by a named Input layer.
    """
    writers = {}
    for i, name in enumerate(graph.inputs):
        writers[name] = ("input", i)
    writers.update(input_writers or {})
    for node in graph.nodes:
        for j, top in enumerate(node.tops):
            writers[top] = (node.name, j)
    readers = {}
    for node in graph.nodes:
        for b in node.bottoms:
            readers[b] = readers.get(b, 0) + 1
    out = {}
    for vid, count in readers.items():
        if count < 2:
            continue
        layer, index = writers[vid]
        blob = graph.caffe_blob(vid)
        for j in range(count):
            out[f"{blob}_{layer}_{index}_split_{j}"] = vid
    return out


def split_blobs(graph, versions, input_writers=None):
    return {name: versions[vid] for name, vid in split_names(graph, input_writers).items()}


def input_writers_from_net(net):
    """{input blob: (Input layer name, top index)} from a NetParameter's Input layers."""
    out = {}
    for layer in net.layer:
        if layer.type == "Input":
            for j, top in enumerate(layer.top):
                out[top] = (layer.name, j)
    return out
