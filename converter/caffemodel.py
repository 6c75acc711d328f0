"""Read and write binary .caffemodel files.

Reading goes through the `WeightsNet` view of caffe.proto: only layer names, types and
blobs are decoded, float data arrives as raw bytes (np.frombuffer, no Python float per
value), and parameter messages stay unknown fields whatever their number or wire shape
(the fork/BVLC 147/148 clash cannot break a read).
"""
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from google.protobuf.message import DecodeError

from .errors import ModelError
from .proto import caffe_pb
from .prototxt import read_model_file

V1_TYPE_NAMES = {v.number: v.name for v in caffe_pb.V1LayerParameter.DESCRIPTOR.enum_types_by_name["LayerType"].values}


@dataclass(frozen=True)
class LayerBlobs:
    """The blobs of one caffemodel layer; `legacy[i]` tells blob i had only num/channels/height/width."""

    name: str
    type: str
    blobs: tuple
    legacy: tuple


def _blob_array(blob, path, layer, index):
    if blob.HasField("shape"):
        shape, legacy = tuple(int(d) for d in blob.shape.dim), False
    else:
        dims = (blob.num, blob.channels, blob.height, blob.width)
        shape, legacy = (dims if any(dims) else ()), True
    if blob.data:
        raw = blob.data[0] if len(blob.data) == 1 else b"".join(blob.data)
        arr = np.frombuffer(raw, dtype="<f4")
    elif blob.double_data:
        arr = np.frombuffer(b"".join(blob.double_data), dtype="<f8").astype(np.float32)
    else:
        arr = _unpacked_fallback(blob)
    expected = int(np.prod(shape)) if shape else 1
    if arr.size != expected:
        raise ModelError(f"blob {index} holds {arr.size} values but its shape {list(shape)} needs {expected}",
                         file=path, layer=layer)
    return arr.reshape(shape), legacy


def _unpacked_fallback(blob):
    """Values written unpacked (one fixed32 per float) are unknown to the bytes view: re-read fully."""
    full = caffe_pb.BlobProto.FromString(blob.SerializeToString())
    if len(full.data):
        return np.asarray(full.data, dtype=np.float32)
    return np.asarray(full.double_data, dtype=np.float64).astype(np.float32)


def read_caffemodel(path, progress=None):
    """Return {layer name: LayerBlobs} for every layer that has blobs, in file order."""
    path = Path(path)
    raw = read_model_file(path, ".caffemodel")
    if progress:
        progress(f"parsing {len(raw) / 2**20:.0f} MB")
    net = caffe_pb.WeightsNet()
    try:
        net.ParseFromString(raw)
    except DecodeError:
        raise ModelError("not a Caffe caffemodel: the file is truncated or is not a binary NetParameter",
                         file=path) from None
    del raw
    if not net.layer and not net.layers:
        raise ModelError("not a Caffe caffemodel: it holds no layers", file=path)
    out = {}
    layers = [(l.name, l.type, l.blobs) for l in net.layer]
    layers += [(l.name, V1_TYPE_NAMES.get(l.type, str(l.type)), l.blobs) for l in net.layers]
    for name, type_, blobs in layers:
        if not blobs:
            continue
        arrays, legacy = zip(*(_blob_array(b, str(path), name, i) for i, b in enumerate(blobs)))
        out[name] = LayerBlobs(name, type_, tuple(arrays), tuple(legacy))
    return out


def _varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


_LAYER_TAG = _varint((100 << 3) | 2)


def encode_layer(layer_param, blobs):
    """Serialize a LayerParameter (without blobs) followed by its blobs, as Caffe's net.save does.

    The blobs are written through the bytes view: packed floats and a bytes field are
    the same on the wire, and concatenated serializations merge into one message.
    """
    head = caffe_pb.LayerParameter()
    head.CopyFrom(layer_param)
    head.ClearField("blobs")
    tail = caffe_pb.WeightsLayer()
    for arr in blobs:
        arr = np.ascontiguousarray(arr, dtype="<f4")
        b = tail.blobs.add()
        b.shape.dim.extend(arr.shape)
        b.data.append(arr.tobytes())
    return head.SerializeToString() + tail.SerializeToString()


def write_caffemodel(path, net_name, layers):
    """Write [(LayerParameter, [arrays])] as a standard caffemodel, atomically."""
    head = caffe_pb.NetParameter(name=net_name).SerializeToString()
    parts = [head]
    for layer_param, blobs in layers:
        body = encode_layer(layer_param, blobs)
        parts += [_LAYER_TAG, _varint(len(body)), body]
    atomic_write_bytes(path, b"".join(parts))


def atomic_write_bytes(path, data):
    """Write to a temporary file beside `path`, then rename: no half-written file on failure."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
