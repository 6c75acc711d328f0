"""Read and write binary .caffemodel files, streaming.

The reader walks the NetParameter wire format itself, layer by layer, with small reads
for the field headers and `readinto` straight into each blob's own float32 array: peak
memory is the blobs kept plus one small buffer, never the whole file or a parsed copy of
it, and offsets and lengths are Python integers, so files over 2 GB read like any other
(protobuf's own parser refuses messages over 2 GB). Only layer names, types and blobs are
decoded; every other field (parameter messages, whatever their number or wire shape: the
fork/BVLC 147/148 clash) is skipped by its length, never decoded. Anything malformed
(truncation, a varint over 10 bytes, a length past its message, float data that is not a
whole number of floats, negative or overflowing dims, a field with a wire type its number
cannot have) is a ModelError naming the file, the byte offset and the layer.

The writer streams too: one layer serialized at a time, into a staged file (see staging).
"""
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelError
from .proto import caffe_pb
from .staging import Staging

V1_TYPE_NAMES = {v.number: v.name for v in caffe_pb.V1LayerParameter.DESCRIPTOR.enum_types_by_name["LayerType"].values}

#: longest layer name or type string read (a real one is a few dozen bytes)
MAX_NAME_BYTES = 1 << 16
#: bytes read at a time when converting double data or scanning unpacked values
CHUNK = 1 << 22
_WIRE_NAMES = {0: "varint", 1: "64-bit", 2: "length-delimited", 3: "group start", 4: "group end", 5: "32-bit"}


@dataclass(frozen=True)
class LayerBlobs:
    """The blobs of one caffemodel layer; `legacy[i]` tells blob i had only num/channels/height/width."""

    name: str
    type: str
    blobs: tuple
    legacy: tuple


class _Corrupt(Exception):
    """A malformed byte range; turned into a located ModelError by the caller."""

    def __init__(self, message, offset):
        super().__init__(message)
        self.offset = offset


class _Wire:
    """Protobuf wire-format access to a file by absolute offset, through a small window."""

    WINDOW = 1 << 16

    def __init__(self, f, size):
        self.f, self.size = f, size
        self._buf, self._start = b"", 0

    def bytes(self, pos, n):
        """n bytes at pos (n small), or fewer at the end of the file."""
        if not (self._start <= pos and pos + n <= self._start + len(self._buf)):
            self.f.seek(pos)
            self._buf, self._start = self.f.read(max(n, self.WINDOW)), pos
        i = pos - self._start
        return self._buf[i:i + n]

    def varint(self, pos, end):
        """(unsigned value, next pos) of the varint at pos, within [pos, end)."""
        raw = self.bytes(pos, min(10, end - pos))
        value = 0
        for i, byte in enumerate(raw):
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                return value, pos + i + 1
        if len(raw) == 10:
            raise _Corrupt("a varint longer than 10 bytes", pos)
        raise _Corrupt("truncated in the middle of a varint", pos)

    def field(self, pos, end):
        """(field number, wire type, value, offset of the tag, offset after the field) at pos.

        value: an int for varints; (payload start, payload end) for length-delimited fields;
        the payload offset for 32/64-bit fields; groups are skipped whole (value None).
        """
        tag_at = pos
        tag, pos = self.varint(pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise _Corrupt("field number 0 (not protobuf data)", tag_at)
        if wire == 0:
            value, pos = self.varint(pos, end)
        elif wire == 1 or wire == 5:
            value, pos = pos, pos + (8 if wire == 1 else 4)
        elif wire == 2:
            length, pos = self.varint(pos, end)
            value, pos = (pos, pos + length), pos + length
        elif wire == 3:
            pos = self._skip_group(number, pos, end)
            value = None
        else:
            raise _Corrupt(f"wire type {wire} ({_WIRE_NAMES.get(wire, 'invalid')}) where a field starts", tag_at)
        if pos > end:
            raise _Corrupt(f"field {number} runs {pos - end} bytes past the end of its message "
                           f"(truncated file?)", tag_at)
        return number, wire, value, tag_at, pos

    def fields(self, start, end):
        """(field number, wire type, value, offset of the tag) for each field in [start, end)."""
        pos = start
        while pos < end:
            number, wire, value, tag_at, pos = self.field(pos, end)
            yield number, wire, value, tag_at

    def run_length(self, pos, end, tag, width):
        """How many consecutive records `tag byte + width bytes` start at pos (an unpacked
        repeated fixed-width field), scanned in vectorized chunks."""
        rec = 1 + width
        count = 0
        while pos < end:
            k = min(CHUNK // rec, (end - pos) // rec)
            if k == 0:
                break
            self.f.seek(pos)
            raw = np.frombuffer(self.f.read(k * rec), dtype=np.uint8)
            k = len(raw) // rec
            tags = raw[:k * rec].reshape(k, rec)[:, 0]
            bad = np.flatnonzero(tags != tag)
            if bad.size:
                count += int(bad[0])
                break
            count += k
            pos += k * rec
        self._buf = b""
        return count

    def read_records(self, out, pos, n, width):
        """Fill `out` with the n values of an unpacked run starting at pos."""
        rec = 1 + width
        step = max(1, CHUNK // rec)
        dtype = "<f8" if width == 8 else "<f4"
        for i in range(0, n, step):
            k = min(step, n - i)
            self.f.seek(pos + i * rec)
            raw = np.frombuffer(self.f.read(k * rec), dtype=np.uint8)
            if raw.size != k * rec:
                raise _Corrupt("the file ends inside blob data (truncated file?)", pos + i * rec)
            out[i:i + k] = raw.reshape(k, rec)[:, 1:].copy().view(dtype).reshape(k)
        self._buf = b""

    def _skip_group(self, number, pos, end):
        depth = [number]
        while depth:
            if pos >= end:
                raise _Corrupt(f"group {number} is never closed", pos)
            tag, pos = self.varint(pos, end)
            n, wire = tag >> 3, tag & 7
            if wire == 0:
                _, pos = self.varint(pos, end)
            elif wire in (1, 5):
                pos += 8 if wire == 1 else 4
            elif wire == 2:
                length, pos = self.varint(pos, end)
                pos += length
            elif wire == 3:
                depth.append(n)
            elif wire == 4:
                if n != depth.pop():
                    raise _Corrupt(f"group {n} closed inside group {number}", pos)
            else:
                raise _Corrupt(f"invalid wire type {wire}", pos)
        return pos

    def read_into(self, array, pos, nbytes):
        """Fill `array` (a writable contiguous buffer of nbytes) from the file at pos."""
        view = memoryview(array).cast("B")
        self.f.seek(pos)
        got = 0
        while got < nbytes:
            n = self.f.readinto(view[got:])
            if not n:
                raise _Corrupt("the file ends inside blob data (truncated file?)", pos + got)
            got += n
        self._buf = b""


def _signed64(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def _expect(wire, allowed, what, tag_at):
    if wire not in allowed:
        raise _Corrupt(f"{what} has wire type {wire} ({_WIRE_NAMES.get(wire, 'invalid')}), which that field "
                       f"cannot have", tag_at)


def _text(wire, value, tag_at, what):
    _expect(wire, (2,), what, tag_at)
    start, end = value
    if end - start > MAX_NAME_BYTES:
        raise _Corrupt(f"{what} is {end - start} bytes long (a layer {what} is at most {MAX_NAME_BYTES})", tag_at)
    return (start, end)


class _BlobReader:
    """One BlobProto: shape and data ranges first, then one allocation of the final array."""

    def __init__(self, wire):
        self.w = wire

    def read(self, start, end):
        w = self.w
        legacy_dims = [0, 0, 0, 0]
        shape = None
        floats, doubles = [], []  # (kind, data offset, value count): "packed" ranges or "unpacked" runs
        pos = start
        while pos < end:
            number, wire, value, tag_at, pos = w.field(pos, end)
            if wire in (1, 5) and number in (5, 8) and (wire == 5) == (number == 5):
                # an unpacked run: the values from here on that carry the same one-byte tag
                width = 4 if wire == 5 else 8
                n = 1 + w.run_length(pos, end, (number << 3) | wire, width)
                (floats if wire == 5 else doubles).append(("unpacked", tag_at, n))
                pos = tag_at + n * (1 + width)
                continue
            if 1 <= number <= 4:
                _expect(wire, (0,), f"blob field {('num', 'channels', 'height', 'width')[number - 1]}", tag_at)
                legacy_dims[number - 1] = _signed64(value)
            elif number == 5:
                _expect(wire, (2,), "float data (field 5)", tag_at)
                floats.append(self._range(wire, value, tag_at, 4, "float"))
            elif number == 8:
                _expect(wire, (2,), "double data (field 8)", tag_at)
                doubles.append(self._range(wire, value, tag_at, 8, "double"))
            elif number == 7:
                _expect(wire, (2,), "blob shape (field 7)", tag_at)
                shape = (shape or []) + self._dims(*value)
        if shape is not None:
            dims, legacy = shape, False
        else:
            dims, legacy = [d for d in legacy_dims] if any(legacy_dims) else [], True
        for d in dims:
            if d < 0:
                raise _Corrupt(f"blob shape {dims} has a negative dimension", start)
        count = 1
        for d in dims:
            count *= d
        source, width = (doubles, 8) if doubles else (floats, 4)
        have = sum(n for _, _, n in source)
        if have != count:
            need = f"{count}" if count < 10**15 else "more than 10^15"
            raise _Corrupt(f"blob holds {have} values but its shape {dims} needs {need}", start)
        arr = np.empty(count, dtype="<f4")
        at = 0
        for kind, pos, n in source:
            self._fill(arr[at:at + n], kind, pos, n, width)
            at += n
        return arr.reshape(dims), legacy

    def _range(self, wire, value, tag_at, width, what):
        """(kind, data offset, value count) of one packed data field."""
        s, e = value
        if (e - s) % width:
            raise _Corrupt(f"{what} data of {e - s} bytes is not a whole number of {width}-byte {what}s", tag_at)
        return ("packed", s, (e - s) // width)

    def _dims(self, start, end):
        dims = []
        for number, wire, value, tag_at in self.w.fields(start, end):
            if number != 1:
                continue
            _expect(wire, (0, 2), "blob shape dim (field 1)", tag_at)
            if wire == 0:
                dims.append(_signed64(value))
                continue
            pos, stop = value
            while pos < stop:
                v, pos = self.w.varint(pos, stop)
                dims.append(_signed64(v))
            if len(dims) > 64:
                raise _Corrupt(f"blob shape has {len(dims)}+ dimensions", tag_at)
        return dims

    def _fill(self, out, kind, pos, n, width):
        w = self.w
        if kind == "unpacked":
            w.read_records(out, pos, n, width)
            return
        if width == 4:
            w.read_into(out, pos, 4 * n)
            return
        step = CHUNK // 8
        buf = np.empty(min(n, step), dtype="<f8")
        for i in range(0, n, step):
            k = min(step, n - i)
            w.read_into(buf[:k], pos + 8 * i, 8 * k)
            out[i:i + k] = buf[:k]


class _NetReader:
    def __init__(self, f, size, path, wanted, progress):
        self.w = _Wire(f, size)
        self.size, self.path, self.wanted, self.progress = size, path, wanted, progress
        self.blob_reader = _BlobReader(self.w)

    def error(self, exc, layer=None):
        return ModelError(f"not a valid caffemodel: {exc} (at byte {exc.offset})", file=self.path, layer=layer)

    def read(self):
        out, n_layers = {}, 0
        next_report = 1 << 28
        try:
            for number, wire, value, tag_at in self.w.fields(0, self.size):
                if number in (100, 2) and wire == 2:
                    n_layers += 1
                    name, type_, blobs = (self._layer if number == 100 else self._v1_layer)(*value)
                    if blobs:
                        arrays, legacy = zip(*blobs)
                        out[name] = LayerBlobs(name, type_, tuple(arrays), tuple(legacy))
                    if self.progress and value[1] >= next_report:
                        self.progress(f"read {value[1] / 2**20:.0f} of {self.size / 2**20:.0f} MB")
                        next_report = value[1] + (1 << 28)
                elif number in (100, 2):
                    raise _Corrupt(f"field {number} (layers) has wire type {wire}", tag_at)
        except _Corrupt as exc:
            raise self.error(exc) from None
        if not n_layers:
            raise ModelError("not a Caffe caffemodel: it holds no layers", file=self.path)
        return out

    def _decode(self, span):
        start, end = span
        return self.w.bytes(start, end - start).decode("utf-8", errors="replace")

    def _blobs(self, name, spans):
        if self.wanted is not None and name not in self.wanted:
            return []
        out = []
        for i, (s, e) in enumerate(spans):
            try:
                out.append(self.blob_reader.read(s, e))
            except _Corrupt as exc:
                raise ModelError(f"blob {i}: {exc} (at byte {exc.offset})", file=self.path, layer=name) from None
        return out

    def _layer(self, start, end):
        """LayerParameter: name 1, type 2, blobs 7; everything else skipped undecoded."""
        name, type_, spans = self._string_typed_layer(start, end, blobs_field=7)
        return name, type_, self._blobs(name, spans)

    def _string_typed_layer(self, start, end, blobs_field):
        """(name, type, blob spans) of a layer message with the name in field 1 and a string
        type in field 2 (LayerParameter, V0LayerParameter), blobs in `blobs_field`."""
        name = type_ = None
        spans = []
        for number, wire, value, tag_at in self.w.fields(start, end):
            if number == 1:
                name = _text(wire, value, tag_at, "name")
            elif number == 2:
                type_ = _text(wire, value, tag_at, "type")
            elif number == blobs_field:
                _expect(wire, (2,), f"blobs (field {blobs_field})", tag_at)
                spans.append(value)
        return self._decode(name) if name else "", self._decode(type_) if type_ else "", spans

    def _v1_layer(self, start, end):
        """V1LayerParameter: name 4, type 5 (enum), blobs 6, and a V0 layer in field 1."""
        name = v0 = None
        type_, spans = None, []
        for number, wire, value, tag_at in self.w.fields(start, end):
            if number == 4:
                name = _text(wire, value, tag_at, "name")
            elif number == 5:
                _expect(wire, (0,), "type (field 5)", tag_at)
                type_ = V1_TYPE_NAMES.get(value, str(value))
            elif number == 6:
                _expect(wire, (2,), "blobs (field 6)", tag_at)
                spans.append(value)
            elif number == 1:
                _expect(wire, (2,), "V0 layer (field 1)", tag_at)
                v0 = value
        name = self._decode(name) if name else ""
        if v0 is not None and (not name or not spans):
            v0_name, v0_type, v0_spans = self._v0_layer(*v0)
            name, type_, spans = name or v0_name, type_ or v0_type, spans or v0_spans
        return name, type_ or "", self._blobs(name, spans)

    def _v0_layer(self, start, end):
        """V0LayerParameter (the oldest format): name 1, type 2 (string), blobs 50."""
        return self._string_typed_layer(start, end, blobs_field=50)


def read_caffemodel(path, progress=None, layers=None):
    """Return {layer name: LayerBlobs} for every layer that has blobs, in file order.

    With `layers` (a set of names), only those layers' blobs are read; the others are skipped.
    """
    path = Path(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise ModelError("no such file", file=path) from None
    except IsADirectoryError:
        raise ModelError("is a directory, expected a .caffemodel file", file=path) from None
    except OSError as exc:
        raise ModelError(f"cannot read: {exc.strerror}", file=path) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if progress:
            progress(f"parsing {size / 2**20:.0f} MB")
        try:
            return _NetReader(f, size, str(path), None if layers is None else set(layers), progress).read()
        except OSError as exc:
            raise ModelError(f"cannot read: {exc.strerror}", file=path) from None


def blob_array(blob, path, layer, index):
    """(array, legacy) of a BlobProto message (blobs written inside a prototxt), with the
    reader's checks."""
    raw = blob.SerializeToString()
    wire = _Wire(io.BytesIO(raw), len(raw))
    try:
        return _BlobReader(wire).read(0, len(raw))
    except _Corrupt as exc:
        raise ModelError(f"blob {index}: {exc}", file=path, layer=layer) from None


_blob_array = blob_array  # the name weights.py uses


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


def write_caffemodel(path, net_name, layers, *, force=True, inputs=()):
    """Write [(LayerParameter, [arrays])] as a standard caffemodel, one layer at a time, into a
    staged file moved into place at the end (nothing is left behind on failure). `force`
    False refuses to replace an existing file; `inputs` are paths it must not be."""
    with Staging([path], force=force, inputs=inputs) as st:
        with open(st.path(path), "wb") as f:
            f.write(caffe_pb.NetParameter(name=net_name).SerializeToString())
            for layer_param, blobs in layers:
                body = encode_layer(layer_param, blobs)
                f.write(_LAYER_TAG + _varint(len(body)))
                f.write(body)
                del body
        st.commit()


def atomic_write_bytes(path, data, *, force=True, inputs=()):
    """Write `data` to `path` through a staged file: no half-written file on failure."""
    with Staging([path], force=force, inputs=inputs) as st:
        Path(st.path(path)).write_bytes(data)
        st.commit()
