"""Attach caffemodel blobs to graph nodes, checked against the shapes the layers need."""
from dataclasses import replace

import numpy as np

from .errors import ModelError, ModelErrors
from .layers import handler_for


def expected_blob_shapes(graph, shapes):
    """layer name -> list of blob shapes its handler needs (learnable layers only)."""
    out = {}
    for node in graph.nodes:
        h = handler_for(node.type)
        need = h.blob_shapes(node, [shapes[b] for b in node.bottoms]) if h else []
        if need:
            out[node.name] = [tuple(s) for s in need]
    return out


def _fit(arr, want, legacy):
    """The blob in the layer's canonical shape, or None if it does not fit."""
    if tuple(arr.shape) == tuple(want):
        return arr
    if int(np.prod(arr.shape)) != int(np.prod(want)):
        return None
    squeezed = tuple(d for d in arr.shape if d != 1)
    if legacy or squeezed == tuple(d for d in want if d != 1):
        return arr.reshape(want)
    return None


def bind_weights(graph, shapes, caffemodel, caffemodel_path=None):
    """Return a graph whose learnable nodes carry their blobs (canonical shapes, float32).

    `caffemodel` is read_caffemodel()'s dict, or None to use blobs written in the prototxt.
    Every missing or misshapen blob in the net is reported in one error.
    """
    need = expected_blob_shapes(graph, shapes)
    errors, nodes = [], []
    for node in graph.nodes:
        want = need.get(node.name)
        if not want:
            nodes.append(node)
            continue
        src = caffemodel.get(node.name) if caffemodel is not None else None
        blobs = list(src.blobs) if src is not None else []
        legacy = list(src.legacy) if src is not None else []
        if src is None and node.param.blobs:
            from .caffemodel import _blob_array  # prototxt-embedded blobs (rare)
            arr_leg = [_blob_array(_as_weights_blob(b), graph.file, node.name, i) for i, b in enumerate(node.param.blobs)]
            blobs, legacy = [a for a, _ in arr_leg], [l for _, l in arr_leg]
        where = dict(file=caffemodel_path or graph.file, line=None if caffemodel is not None else node.line,
                     layer=node.name, layer_type=node.type)
        if not blobs:
            errors.append(ModelError(f"the caffemodel has no blobs for this layer (needs {len(want)}: "
                                     + ", ".join(str(list(s)) for s in want) + ")", **where))
            nodes.append(node)
            continue
        if len(blobs) != len(want):
            errors.append(ModelError(f"the caffemodel has {len(blobs)} blob(s), the prototxt needs {len(want)} ("
                                     + ", ".join(str(list(s)) for s in want) + ")", **where))
            nodes.append(node)
            continue
        fitted = []
        for i, (arr, w, leg) in enumerate(zip(blobs, want, legacy or [False] * len(blobs))):
            f = _fit(arr, w, leg)
            if f is None:
                errors.append(ModelError(f"blob {i} has shape {list(arr.shape)} in the caffemodel but the prototxt "
                                         f"needs {list(w)}", **where))
            fitted.append(f)
        nodes.append(replace(node, blobs=tuple(np.asarray(f, np.float32) for f in fitted)))
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise ModelErrors(f"{caffemodel_path or graph.file}: {len(errors)} layers' weights do not fit the prototxt:",
                          errors)
    return graph.with_nodes(nodes)


def _as_weights_blob(blob):
    from .proto import caffe_pb
    return caffe_pb.WeightsBlob.FromString(blob.SerializeToString())
