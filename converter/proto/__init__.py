"""Caffe message classes built at import time from the committed descriptor set.

`caffe_pb2`-like access: ``from caffe2mx.converter.proto import caffe_pb`` then
``caffe_pb.NetParameter()``. The classes live in a private descriptor pool so that a
user's own ``caffe_pb2`` (from pycaffe, say) can be imported in the same process.
"""
from pathlib import Path
from types import SimpleNamespace

from google.protobuf import descriptor_pb2, descriptor_pool

try:  # protobuf >= 4.21
    from google.protobuf.message_factory import GetMessageClass as _message_class
except ImportError:  # pragma: no cover - protobuf 3.20
    from google.protobuf import message_factory as _mf

    _factory = _mf.MessageFactory()
    _message_class = _factory.GetPrototype

DESCRIPTOR_PATH = Path(__file__).with_name("caffe.desc")


def _load():
    fds = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_PATH.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    file_desc = pool.FindFileByName("caffe.proto")
    ns = {}
    for name, desc in file_desc.message_types_by_name.items():
        ns[name] = _message_class(desc)
    for name, enum in file_desc.enum_types_by_name.items():
        ns[name] = enum
        for value in enum.values:
            ns[value.name] = value.number
    return SimpleNamespace(pool=pool, file=file_desc, **ns)


caffe_pb = _load()
