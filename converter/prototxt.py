"""Read a deploy prototxt into a NetParameter, keeping each layer's source line.

Parsing is tolerant of what the schema does not know, and strict about everything else:

* A field (or a whole `*_param` message) that caffe2mx's schema does not have, or an
  enum value it does not know, is not a syntax error. A structural scan of the text,
  following the schema's descriptors, finds each such field with its line, column and
  the layer it sits in; its text is blanked out (same length, newlines kept) and what
  is left is parsed by protobuf's own `text_format`, strictly. The fields are returned
  on the ParsedNet, for the graph and the check of supported layers to report.
* Everything else (unbalanced braces, a missing colon, `num_output: abc`, a stray
  token) is left to `text_format`, whose error becomes a ModelError at file:line:col.
  Blanking keeps every offset, so its positions are those of the user's file.

The scan is a small recursive-descent walk over the tokens of the text format, not a
second parser: it only has to find where unknown fields start and end. Where it meets
something it does not understand it stops, and `text_format` has the last word.
"""
import bisect
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor as _descriptor
from google.protobuf import text_format

from .errors import ModelError
from .proto import caffe_pb


@dataclass(frozen=True)
class UnknownField:
    """A field (or an enum value) of the text that the schema does not know.

    `container` is "layer" or "layers" for a field inside the `index`-th top-level block
    of that name, or None for a net-level field. `path` is dotted from that block
    (`pooling_param.foo`, `foo_param`), or from the net for net-level fields. `value`
    is set when the field is known but its enum value is not.
    """

    container: str
    index: int
    path: str
    line: int
    column: int
    value: str = None
    suggestion: str = None

    def describe(self):
        """`foo_param`, `pooling_param.pool: MAXX`, with a did-you-mean where one is close."""
        text = f"{self.path}: {self.value}" if self.value is not None else self.path
        return text + (f" (did you mean {self.suggestion}?)" if self.suggestion else "")


@dataclass(frozen=True)
class ParsedNet:
    """A parsed NetParameter plus where each layer block starts in the text."""

    net: object
    path: str
    layer_lines: tuple  # line of each `layer {` block, in net.layer order
    v1_layer_lines: tuple  # line of each `layers {` block, in net.layers order
    unknown_fields: tuple = ()  # UnknownField, in text order

    def unknown_in(self, container, index):
        """The unknown fields inside one top-level `layer`/`layers` block."""
        return tuple(u for u in self.unknown_fields if u.container == container and u.index == index)

    @property
    def net_unknown_fields(self):
        return tuple(u for u in self.unknown_fields if u.container is None)


_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n\f\v]+|\#[^\n]*)
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<num>(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)[fF]?)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<p>[{}<>\[\]:,;\-])
""", re.VERBOSE)

_CLOSE = {"{": "}", "<": ">", "[": "]"}


class _Stop(Exception):
    """The scan met text it does not understand: text_format will say what is wrong."""


def _tokens(text):
    """(kind, text, start, end) for every token; stops (returns what it has) at a bad character."""
    out, pos, n = [], 0, len(text)
    match = _TOKEN.match
    while pos < n:
        m = match(text, pos)
        if m is None:
            return out, False
        kind = m.lastgroup
        if kind != "ws":
            out.append((kind, m.group(), m.start(), m.end()))
        pos = m.end()
    return out, True


class _Scanner:
    """Walks the tokens along the descriptors, noting unknown fields and layer lines."""

    def __init__(self, text):
        self.text = text
        self.toks, self.complete = _tokens(text)
        self.i = 0
        self.unknown = []  # (UnknownField, start, end)
        self.block_starts = {"layer": [], "layers": []}
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def where(self, offset):
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    # -- token access -------------------------------------------------------------
    def peek(self, k=0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def take(self):
        tok = self.peek()
        if tok is None:
            raise _Stop()
        self.i += 1
        return tok

    def at(self, *texts):
        tok = self.peek()
        return tok is not None and tok[0] == "p" and tok[1] in texts

    def expect(self, text):
        tok = self.take()
        if tok[0] != "p" or tok[1] != text:
            raise _Stop()
        return tok

    # -- grammar ------------------------------------------------------------------
    def run(self):
        """Scan the whole net; False if the scan stopped early."""
        try:
            self.message(caffe_pb.NetParameter.DESCRIPTOR, None, None, None, ())
        except _Stop:
            return False
        return self.complete

    def message(self, desc, close, container, index, path):
        while True:
            tok = self.peek()
            if tok is None:
                if close is None:
                    return
                raise _Stop()
            if close is not None and tok[0] == "p" and tok[1] == close:
                self.i += 1
                return
            self.field(desc, container, index, path)

    def field(self, desc, container, index, path):
        name_tok = self.take()
        if name_tok[0] != "id":
            raise _Stop()  # `[extension]` names or a stray token
        name, start = name_tok[1], name_tok[2]
        f = desc.fields_by_name.get(name)
        if f is None:
            self.skip_value()
            end = self.separator()
            self.note(container, index, path + (name,), start, end, suggestion=self.close_match(name, desc))
            return
        block = container is None and path == () and name in self.block_starts  # a top-level layer
        sub_path = () if block else path + (name,)
        if f.type == _descriptor.FieldDescriptor.TYPE_MESSAGE:
            if self.at(":"):
                self.i += 1
            listed = self.at("[")
            if listed:
                self.i += 1
            while True:
                if not self.at("{", "<"):
                    raise _Stop()
                if block:
                    container, index = name, len(self.block_starts[name])
                    self.block_starts[name].append(self.peek()[2] if listed else start)
                self.message(f.message_type, _CLOSE[self.take()[1]], container, index, sub_path)
                if not listed:
                    break
                if self.at(","):
                    self.i += 1
                if self.at("]"):
                    self.i += 1
                    break
            self.separator()
            return
        self.expect(":")
        values = []
        if self.at("["):
            self.i += 1
            while not self.at("]"):
                values.append(self.scalar())
                if self.at(","):
                    self.i += 1
            self.i += 1
        else:
            values.append(self.scalar())
        end = self.separator()
        if f.type == _descriptor.FieldDescriptor.TYPE_ENUM:
            bad = [v for v in values if not self.enum_value_known(f.enum_type, v)]
            if bad:
                self.note(container, index, sub_path, start, end, value=bad[0],
                          suggestion=self.close_value(bad[0], f.enum_type))

    def scalar(self):
        """One scalar value: [-]identifier/number, or adjacent strings; its text."""
        tok = self.take()
        if tok[0] == "p" and tok[1] == "-":
            nxt = self.take()
            if nxt[0] not in ("num", "id"):
                raise _Stop()
            return "-" + nxt[1]
        if tok[0] == "str":
            while self.peek() is not None and self.peek()[0] == "str":
                self.i += 1
            return tok[1]
        if tok[0] in ("num", "id"):
            return tok[1]
        raise _Stop()

    def skip_value(self):
        """Skip an unknown field's value, whatever its shape."""
        if self.at(":"):
            self.i += 1
            if self.at("{", "<", "["):
                self.skip_block()
            else:
                self.scalar()
        elif self.at("{", "<"):
            self.skip_block()
        else:
            raise _Stop()

    def skip_block(self):
        stack = [_CLOSE[self.take()[1]]]
        while stack:
            tok = self.take()
            if tok[0] != "p":
                continue
            if tok[1] in _CLOSE:
                stack.append(_CLOSE[tok[1]])
            elif tok[1] in "}>]":
                if tok[1] != stack.pop():
                    raise _Stop()

    def separator(self):
        """Consume an optional `,`/`;` after a field; the offset where the field ends."""
        if self.at(",", ";"):
            self.i += 1
        return self.toks[self.i - 1][3]

    @staticmethod
    def enum_value_known(enum_type, value):
        try:
            number = int(value, 0)
        except ValueError:
            return value in enum_type.values_by_name
        return number in enum_type.values_by_number

    @staticmethod
    def close_match(name, desc):
        """A known field the name is probably a typo of (`*_param` stems compared without the suffix)."""
        stem = lambda s: s[:-6] if s.endswith("_param") else s  # noqa: E731
        known = {stem(f): f for f in desc.fields_by_name if f.endswith("_param") == name.endswith("_param")}
        found = difflib.get_close_matches(stem(name), list(known), n=1, cutoff=0.8)
        return known[found[0]] if found else None

    @staticmethod
    def close_value(value, enum_type):
        found = difflib.get_close_matches(value, list(enum_type.values_by_name), n=1, cutoff=0.6)
        return found[0] if found else None

    def note(self, container, index, path, start, end, value=None, suggestion=None):
        line, col = self.where(start)
        self.unknown.append((UnknownField(container, index, ".".join(path), line, col, value, suggestion),
                             start, end))


def _blank(text, spans):
    """`text` with each span replaced by spaces (newlines kept): every offset stays put."""
    if not spans:
        return text
    parts, pos = [], 0
    for start, end in sorted(spans):
        parts.append(text[pos:start])
        parts.append(re.sub(r"[^\n]", " ", text[start:end]))
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def _layer_block_lines(text):
    """Line numbers of top-level `layer {` and `layers {` blocks, by a brace-depth scan.

    The fallback for when the scanner stopped early but text_format parsed the text.
    """
    layer, layers = [], []
    depth, i, line, n = 0, 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif c in "\"'":
            quote, i = c, i + 1
            while i < n and text[i] != quote:
                if text[i] == "\\":
                    i += 1
                elif text[i] == "\n":
                    line += 1
                i += 1
        elif c in "{<":
            depth += 1
        elif c in "}>":
            depth -= 1
        elif depth == 0 and (c.isalpha() or c == "_"):
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            if word == "layer":
                layer.append(line)
            elif word == "layers":
                layers.append(line)
            i = j
            continue
        i += 1
    return tuple(layer), tuple(layers)


def parse_prototxt_text(text, path="<string>"):
    scan = _Scanner(text)
    scanned = scan.run()
    cleaned = _blank(text, [(s, e) for _, s, e in scan.unknown])
    net = caffe_pb.NetParameter()
    try:
        text_format.Parse(cleaned, net)
    except text_format.ParseError as exc:
        line, col = exc.GetLine(), exc.GetColumn()
        msg = str(exc)
        prefix = f"{line}:{col} : "
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
        msg = _without_echo(msg)
        raise ModelError(f"syntax error: {msg}", file=path, line=line, column=col) from None
    if scanned:
        layer_lines = tuple(scan.where(s)[0] for s in scan.block_starts["layer"])
        v1_lines = tuple(scan.where(s)[0] for s in scan.block_starts["layers"])
    else:
        layer_lines, v1_lines = _layer_block_lines(text)
    if len(layer_lines) != len(net.layer) or len(v1_lines) != len(net.layers):
        layer_lines = tuple([None] * len(net.layer))
        v1_lines = tuple([None] * len(net.layers))
    return ParsedNet(net=net, path=str(path), layer_lines=layer_lines, v1_layer_lines=v1_lines,
                     unknown_fields=tuple(u for u, _, _ in scan.unknown))


def _without_echo(msg):
    """Newer protobuf quotes the whole offending line before the message; the location says it."""
    m = re.match(r"'.*?': (.*)$", msg, re.DOTALL)
    return m.group(1) if m else msg


def read_model_file(path, kind):
    """The bytes of a model file, or a ModelError naming it (`kind`: what was expected)."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelError("no such file", file=path) from None
    except IsADirectoryError:
        raise ModelError(f"is a directory, expected a {kind} file", file=path) from None
    except OSError as exc:
        raise ModelError(f"cannot read: {exc.strerror}", file=path) from None


def read_prototxt(path):
    path = Path(path)
    raw = read_model_file(path, ".prototxt")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ModelError("not a text prototxt (invalid UTF-8); is this a binary caffemodel?",
                         file=path, line=line) from None
    return parse_prototxt_text(text, str(path))
