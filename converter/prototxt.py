"""Read a deploy prototxt into a NetParameter, keeping each layer's source line."""
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format

from .errors import ModelError
from .proto import caffe_pb


@dataclass(frozen=True)
class ParsedNet:
    """A parsed NetParameter plus where each layer block starts in the text."""

    net: object
    path: str
    layer_lines: tuple  # line of each `layer {` block, in net.layer order
    v1_layer_lines: tuple  # line of each `layers {` block, in net.layers order


def _layer_block_lines(text):
    """Line numbers of top-level `layer {` and `layers {` blocks, by a brace-depth scan.

    text_format keeps no positions, and the i-th top-level `layer` block is net.layer[i].
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
    net = caffe_pb.NetParameter()
    try:
        text_format.Parse(text, net)
    except text_format.ParseError as exc:
        line, col = exc.GetLine(), exc.GetColumn()
        msg = str(exc)
        prefix = f"{line}:{col} : "
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
        raise ModelError(f"syntax error: {msg}", file=path, line=line, column=col) from None
    layer_lines, v1_lines = _layer_block_lines(text)
    if len(layer_lines) != len(net.layer) or len(v1_lines) != len(net.layers):
        layer_lines = tuple([None] * len(net.layer))
        v1_lines = tuple([None] * len(net.layers))
    return ParsedNet(net=net, path=str(path), layer_lines=layer_lines, v1_layer_lines=v1_lines)


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
