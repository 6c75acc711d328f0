"""Caffe's automatic Split blobs: a blob version read by several layers is copied once
per reader, as `<blob>_<layer that wrote it>_<its top index>_split_<j>`."""


def split_names(graph):
    """{split blob name: blob id it copies}, for every version with more than one reader.

    Net inputs are written by their Input layer (for `input:` fields, Caffe's upgraded
    layer named `input`), which the graph's input nodes name.
    """
    writers = {}
    for node in tuple(graph.input_nodes()) + tuple(graph.nodes):
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


def split_blobs(graph, versions):
    return {name: versions[vid] for name, vid in split_names(graph).items()}
