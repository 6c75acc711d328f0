"""A fork's parameter messages added to caffe2mx's schema at run time (`--proto FILE`).

A fork adds a layer type with a parameter message (`optional MishParameter mish_param =
200;` in its LayerParameter). Given the fork's .proto, `mish_param { ... }` in a prototxt
parses and a plug-in's handler reads `node.param.mish_param`; without it the field is
kept as an unknown field and reported with its line.

Accepted files:

* `.proto` text (proto2, package `caffe` or none; `import "caffe.proto"` is allowed and
  means caffe2mx's own schema). Either the fork's whole caffe.proto, or a small file with
  the new messages and the fields to add, written as a partial `message LayerParameter {
  optional MishParameter mish_param = 200; }` or as `extend LayerParameter { ... }`.
  It is read by proto-schema-parser (pure Python, the Buf project's ANTLR grammar;
  `pip install caffe2mx[proto]`), and this module turns its syntax tree into a
  FileDescriptorProto. Why not protoc: the compiler ships only as a native binary (in
  grpcio-tools, a test extra here, or a system package), a heavy install for reading one
  file; the tree-to-descriptor step is short, and a test checks it against protoc's own
  descriptors of caffe.proto.
* a descriptor set written by `protoc --descriptor_set_out=my.desc my.proto` (`.desc`,
  `.pb`, `.protoset`), for users who prefer protoc or cannot install the parser.

Merging, message by message (nested ones too): a message or enum the schema lacks is
added; a field the schema already has by name is the schema's (its type must agree); a new
field whose number the schema already uses moves to the first free number from 1000 + its
number, with a note, as the schema's own clashes do: prototxt text finds fields by name,
and caffemodels are read through messages that decode only names, types and blobs.
"""
import copy
import math
from pathlib import Path

from google.protobuf import descriptor_pb2, text_encoding

from ..errors import UsageError

FDP = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "double": FDP.TYPE_DOUBLE, "float": FDP.TYPE_FLOAT, "int64": FDP.TYPE_INT64, "uint64": FDP.TYPE_UINT64,
    "int32": FDP.TYPE_INT32, "fixed64": FDP.TYPE_FIXED64, "fixed32": FDP.TYPE_FIXED32, "bool": FDP.TYPE_BOOL,
    "string": FDP.TYPE_STRING, "bytes": FDP.TYPE_BYTES, "uint32": FDP.TYPE_UINT32, "sfixed32": FDP.TYPE_SFIXED32,
    "sfixed64": FDP.TYPE_SFIXED64, "sint32": FDP.TYPE_SINT32, "sint64": FDP.TYPE_SINT64,
}
_INTS = {FDP.TYPE_INT64, FDP.TYPE_UINT64, FDP.TYPE_INT32, FDP.TYPE_FIXED64, FDP.TYPE_FIXED32, FDP.TYPE_UINT32,
         FDP.TYPE_SFIXED32, FDP.TYPE_SFIXED64, FDP.TYPE_SINT32, FDP.TYPE_SINT64}
DESCRIPTOR_SET_SUFFIXES = (".desc", ".pb", ".protoset", ".binpb")
PACKAGE = "caffe"


def extend_schema(path):
    """Merge the file's messages into the live schema (`caffe_pb`); returns notes (renumbered fields)."""
    from . import current_file_proto, install
    user = read_file_proto(path)
    merged, notes = merge(current_file_proto(), user, source=str(path))
    try:
        install(merged)
    except TypeError as exc:  # the descriptor pool's own consistency check
        raise UsageError(f"--proto {path}: the merged schema is not valid: {exc}") from None
    return notes


def read_file_proto(path):
    """The FileDescriptorProto of a .proto file or of a protoc descriptor set (files in package caffe merged)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--proto {path}: no such file")
    if p.suffix in DESCRIPTOR_SET_SUFFIXES:
        return _from_descriptor_set(p)
    if p.suffix != ".proto":
        raise UsageError(f"--proto {path}: expected a .proto file or a protoc descriptor set "
                         f"({', '.join(DESCRIPTOR_SET_SUFFIXES)})")
    return file_proto_from_text(p.read_text(encoding="utf-8", errors="replace"), str(p))


def _from_descriptor_set(p):
    try:
        fds = descriptor_pb2.FileDescriptorSet.FromString(p.read_bytes())
    except Exception as exc:
        raise UsageError(f"--proto {p}: not a descriptor set written by protoc --descriptor_set_out ({exc})") from None
    files = [f for f in fds.file if f.package in ("", PACKAGE)]
    if not files:
        raise UsageError(f"--proto {p}: holds no file in package '{PACKAGE}'")
    out = descriptor_pb2.FileDescriptorProto(name=str(p), package=PACKAGE, syntax="proto2")
    for f in files:
        if f.syntax not in ("", "proto2"):
            raise UsageError(f"--proto {p}: {f.name} is {f.syntax}; Caffe's schema is proto2")
        out.message_type.extend(f.message_type)
        out.enum_type.extend(f.enum_type)
        out.extension.extend(f.extension)
    _fold_extensions(out, str(p))
    return out


# -- .proto text -> FileDescriptorProto ---------------------------------------------------------
def file_proto_from_text(text, source="<proto>"):
    """Parse proto2 text into a FileDescriptorProto whose type names are resolved against itself
    and, for names it does not define, left relative (resolved when merged into the schema)."""
    try:
        from proto_schema_parser import ast
        from proto_schema_parser.parser import Parser
    except ImportError:
        raise UsageError(f"--proto {source}: reading .proto text needs proto-schema-parser "
                         f"(pip install 'caffe2mx[proto]'), or give a descriptor set made with "
                         f"protoc --descriptor_set_out=FILE.desc") from None
    from antlr4.error.ErrorListener import ErrorListener

    class _Raise(ErrorListener):
        def syntaxError(self, recognizer, symbol, line, column, msg, e):
            raise UsageError(f"{source}:{line}:{column + 1}: {msg}")

    def quiet(obj):
        obj.removeErrorListeners()
        obj.addErrorListener(_Raise())

    tree = Parser(setup_lexer=quiet, setup_parser=quiet).parse(text)
    if tree.syntax not in (None, "proto2"):
        raise UsageError(f"{source}: syntax {tree.syntax}: Caffe's schema is proto2")
    out = descriptor_pb2.FileDescriptorProto(name=source, package=PACKAGE, syntax="proto2")
    for el in tree.file_elements:
        if isinstance(el, ast.Package):
            if el.name != PACKAGE:
                raise UsageError(f"{source}: package {el.name}: the messages must be in package {PACKAGE} "
                                 f"(Caffe's), or in none")
        elif isinstance(el, ast.Import):
            if Path(el.name).name != "caffe.proto":
                raise UsageError(f"{source}: imports {el.name}: only caffe.proto (caffe2mx's own schema) can be "
                                 f"imported; put the other messages in this file")
        elif isinstance(el, ast.Message):
            out.message_type.add().CopyFrom(_message(el, source))
        elif isinstance(el, ast.Enum):
            out.enum_type.add().CopyFrom(_enum(el, source))
        elif isinstance(el, ast.Extension):
            for f in el.elements:
                if isinstance(f, ast.Field):
                    fd = out.extension.add()
                    fd.CopyFrom(_field(f, source, el.typeName))
                    fd.extendee = el.typeName
                elif not isinstance(f, ast.Comment):
                    raise UsageError(f"{source}: extend {el.typeName}: {type(f).__name__} is not supported")
        elif isinstance(el, (ast.Comment, ast.Option)):
            continue
        else:
            raise UsageError(f"{source}: {type(el).__name__} declarations are not supported in a --proto file "
                             f"(messages, enums and extend blocks are)")
    _fold_extensions(out, source)
    return out


def _message(msg, source):
    from proto_schema_parser import ast
    out = descriptor_pb2.DescriptorProto(name=msg.name)
    for el in msg.elements:
        if isinstance(el, ast.Field):
            out.field.add().CopyFrom(_field(el, source, msg.name))
        elif isinstance(el, ast.Message):
            out.nested_type.add().CopyFrom(_message(el, source))
        elif isinstance(el, ast.Enum):
            out.enum_type.add().CopyFrom(_enum(el, source))
        elif isinstance(el, ast.Reserved):
            out.reserved_name.extend(el.names)
        elif isinstance(el, ast.ExtensionRange):
            for r in el.ranges:
                lo, _, hi = (part.strip() for part in r.partition(" to "))
                end = 2 ** 29 if hi == "max" else int(hi or lo, 0) + 1  # exclusive, as descriptors store it
                out.extension_range.add(start=int(lo, 0), end=end)
        elif isinstance(el, (ast.Comment, ast.Option)):
            continue
        else:
            raise UsageError(f"{source}: message {msg.name}: {type(el).__name__} is not supported in a --proto file "
                             f"(Caffe's schema uses plain fields, nested messages and enums)")
    return out


def _enum(enum, source):
    from proto_schema_parser import ast
    out = descriptor_pb2.EnumDescriptorProto(name=enum.name)
    for el in enum.elements:
        if isinstance(el, ast.EnumValue):
            out.value.add(name=el.name, number=int(el.number))
        elif isinstance(el, ast.Option) and el.name == "allow_alias":
            out.options.allow_alias = bool(el.value)
    return out


def _field(f, source, where):
    from proto_schema_parser import ast
    # `required` becomes optional, as in caffe2mx's own schema: a missing value is then the
    # handler's error, with the layer's name, not a parse failure
    label = FDP.LABEL_REPEATED if f.cardinality is not None and f.cardinality.value == "REPEATED" \
        else FDP.LABEL_OPTIONAL
    out = FDP(name=f.name, number=int(f.number), label=label)
    if f.type in _SCALARS:
        out.type = _SCALARS[f.type]
    else:
        out.type_name = f.type  # resolved against the schema in merge()
    for opt in f.options:
        if opt.name == "default":
            value = opt.value.name if isinstance(opt.value, ast.Identifier) else opt.value
            out.default_value = _default_text(out.type if out.HasField("type") else None, value)
        elif opt.name == "packed":
            out.options.packed = bool(opt.value)
        elif opt.name == "deprecated":
            out.options.deprecated = bool(opt.value)
    return out


def _default_text(type_, value):
    """FieldDescriptorProto.default_value as protoc writes it."""
    if type_ == FDP.TYPE_STRING:
        return text_encoding.CUnescape(str(value)).decode("utf-8")
    if type_ == FDP.TYPE_BYTES:
        return text_encoding.CEscape(text_encoding.CUnescape(str(value)), as_utf8=False)
    if type_ == FDP.TYPE_BOOL:
        return "true" if value in (True, "true") else "false"
    if type_ in (FDP.TYPE_FLOAT, FDP.TYPE_DOUBLE):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if type_ is None:  # an enum value name
        return str(value)
    return str(int(value, 0) if isinstance(value, str) else int(value))


def _fold_extensions(out, source):
    """`extend LayerParameter { ... }` (Caffe's messages declare no extension ranges, so protoc
    itself would refuse it): the fields become plain fields of a partial message of that name."""
    exts = list(out.extension)
    del out.extension[:]
    for fd in exts:
        path = _strip_package(fd.extendee).split(".")
        container, msg = out, None
        for part in path:
            pool = container.message_type if container is out else container.nested_type
            msg = next((m for m in pool if m.name == part), None)
            if msg is None:
                msg = pool.add(name=part)
            container = msg
        f = msg.field.add()
        f.CopyFrom(fd)
        f.ClearField("extendee")
        f.ClearField("oneof_index")


def _strip_package(name):
    name = name.lstrip(".")
    return name[len(PACKAGE) + 1:] if name.startswith(PACKAGE + ".") else name


# -- merging into the schema -----------------------------------------------------------------
def merge(base, user, source="--proto"):
    """(merged FileDescriptorProto, notes): `base` with `user`'s messages, enums and fields added."""
    merged = copy.deepcopy(base)
    symbols = _symbols(merged) | _symbols(user)
    user = copy.deepcopy(user)
    for msg in user.message_type:
        _resolve(msg, f".{PACKAGE}.{msg.name}", symbols, source)
    notes = []
    for enum in user.enum_type:
        _merge_enum(merged.enum_type, enum, f"{PACKAGE}", source)
    for msg in user.message_type:
        _merge_message(merged.message_type, msg, PACKAGE, source, notes)
    return merged, notes


def _symbols(fdp):
    """{full name: 'message' | 'enum'} of a file."""
    out = {}

    def walk(msgs, enums, scope):
        for e in enums:
            out[f"{scope}.{e.name}"] = "enum"
        for m in msgs:
            name = f"{scope}.{m.name}"
            out[name] = "message"
            walk(m.nested_type, m.enum_type, name)

    walk(fdp.message_type, fdp.enum_type, f".{PACKAGE}")
    return out


def _resolve(msg, scope, symbols, source):
    """Fully qualify every field type name of `msg` (proto scoping: innermost scope first)."""
    for f in msg.field:
        if f.HasField("type") and not f.type_name:
            continue
        name = f.type_name
        if name.startswith("."):
            candidates = [name]
        else:
            parts = scope.split(".")
            candidates = [".".join(parts[:k] + [name]) for k in range(len(parts), 0, -1)]
            candidates = [c if c.startswith(".") else "." + c for c in candidates]
        found = next((c for c in candidates if c in symbols), None)
        if found is None:
            raise UsageError(f"{source}: field {scope.lstrip('.')}.{f.name}: unknown type '{name}'")
        f.type_name = found
        f.type = FDP.TYPE_MESSAGE if symbols[found] == "message" else FDP.TYPE_ENUM
    for nested in msg.nested_type:
        _resolve(nested, f"{scope}.{nested.name}", symbols, source)


def _merge_message(pool, msg, scope, source, notes):
    name = f"{scope}.{msg.name}"
    have = next((m for m in pool if m.name == msg.name), None)
    if have is None:
        pool.add().CopyFrom(msg)
        return
    by_name = {f.name: f for f in have.field}
    used = {f.number: f.name for f in have.field}
    for f in msg.field:
        mine = by_name.get(f.name)
        if mine is not None:
            if not _same_kind(mine, f):
                raise UsageError(f"{source}: field {name}.{f.name} is {_kind(f)} there but {_kind(mine)} in "
                                 f"caffe2mx's schema")
            continue
        new = have.field.add()
        new.CopyFrom(f)
        if f.number in used:
            number = 1000 + f.number
            while number in used or 19000 <= number <= 19999:  # 19000-19999: protobuf's own
                number += 1
            notes.append(f"{source}: {name}.{f.name} = {f.number} is {name}.{used[f.number]} in caffe2mx's schema: "
                         f"moved to {number} (a prototxt reads it by name)")
            new.number = number
        used[new.number] = new.name
        by_name[new.name] = new
    for enum in msg.enum_type:
        _merge_enum(have.enum_type, enum, name, source)
    for nested in msg.nested_type:
        _merge_message(have.nested_type, nested, name, source, notes)


def _merge_enum(pool, enum, scope, source):
    have = next((e for e in pool if e.name == enum.name), None)
    if have is None:
        pool.add().CopyFrom(enum)
        return
    names = {v.name: v.number for v in have.value}
    numbers = {v.number: v.name for v in have.value}
    for v in enum.value:
        if v.name in names:
            if names[v.name] != v.number:
                raise UsageError(f"{source}: enum value {scope}.{enum.name}.{v.name} is {v.number} there but "
                                 f"{names[v.name]} in caffe2mx's schema")
            continue
        if v.number in numbers and not have.options.allow_alias:
            raise UsageError(f"{source}: enum value {scope}.{enum.name}.{v.name} = {v.number} is "
                             f"{numbers[v.number]} in caffe2mx's schema")
        have.value.add().CopyFrom(v)
        names[v.name], numbers[v.number] = v.number, v.name


def _same_kind(a, b):
    """Same field for prototxt text: same repetition and type (any two integer types, or float
    and double, read the same text)."""
    def family(f):
        if f.type_name:
            return f.type_name
        return "int" if f.type in _INTS else "real" if f.type in (FDP.TYPE_FLOAT, FDP.TYPE_DOUBLE) else f.type
    repeated = FDP.LABEL_REPEATED
    return (a.label == repeated) == (b.label == repeated) and family(a) == family(b)


def _kind(f):
    label = {FDP.LABEL_OPTIONAL: "optional", FDP.LABEL_REQUIRED: "required", FDP.LABEL_REPEATED: "repeated"}[f.label]
    if f.type_name:
        return f"{label} {f.type_name.lstrip('.')}"
    kind = next((k for k, v in _SCALARS.items() if v == f.type), str(f.type))
    return f"{label} {kind}"
