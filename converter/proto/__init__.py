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


def base_file_proto():
    """caffe2mx's own schema as a FileDescriptorProto (a fresh copy)."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_PATH.read_bytes())
    return next(fd for fd in fds.file if fd.name == "caffe.proto")


_CURRENT = []  # the FileDescriptorProto caffe_pb is built from, once the schema was extended


def current_file_proto():
    """The schema in use (caffe2mx's, or as extended by --proto files) as a FileDescriptorProto."""
    out = descriptor_pb2.FileDescriptorProto()
    out.CopyFrom(_CURRENT[-1] if _CURRENT else base_file_proto())
    return out


def install(file_proto):
    """Rebuild every class of `caffe_pb` from `file_proto` (an extended schema), in place, so
    that code holding `caffe_pb` sees the new messages. Messages made before stay of the old
    classes: extend the schema before reading a net."""
    ns = _load(file_proto)
    vars(caffe_pb).update(vars(ns))
    _CURRENT[:] = [file_proto]


def reset():
    """Back to caffe2mx's own schema (tests; a process that wants to drop --proto files)."""
    install(base_file_proto())
    _CURRENT.clear()


def _load(file_proto=None):
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto or base_file_proto())
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
