"""The streaming caffemodel reader: corrupt payloads are located errors, files over 2 GB
read, unpacked (legacy) values and V0/V1 layers read, and only what is needed is decoded."""
import os
import resource
import struct

import numpy as np
import pytest

from caffe2mx.converter.caffemodel import _varint, read_caffemodel
from caffe2mx.converter.errors import ModelError
from caffe2mx.converter.proto import caffe_pb

from test_bad_inputs import GOOD_NET, good_blobs, write_model
from test_robust_cli import assert_refused, write


def ld(number, payload):
    """A length-delimited protobuf field."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def vi(number, value):
    return _varint((number << 3) | 0) + _varint(value & ((1 << 64) - 1))


def packed_dims(*dims):
    return ld(7, ld(1, b"".join(_varint(d & ((1 << 64) - 1)) for d in dims)))


def layer(name, *blobs, type_=b"InnerProduct", extra=b""):
    return ld(100, ld(1, name) + ld(2, type_) + extra + b"".join(ld(7, b) for b in blobs))


def floats(values):
    return ld(5, np.asarray(values, "<f4").tobytes())


#: (blob bytes, pieces of the error): each is a payload Caffe itself could not load
CORRUPT_BLOBS = {
    "float-bytes-not-whole": (ld(5, b"\0" * 7) + packed_dims(2), ["not a whole number of 4-byte floats"]),
    "double-bytes-not-whole": (ld(8, b"\0" * 12) + packed_dims(2), ["not a whole number of 8-byte doubles"]),
    "negative-dim": (floats([1, 2]) + packed_dims(-2, -1), ["negative dimension"]),
    "overflowing-dims": (floats([1, 2]) + packed_dims(2**62, 2**62), ["holds 2 values but its shape"]),
    "data-as-varint": (vi(5, 7) + packed_dims(1), ["float data (field 5) has wire type 0"]),
    "shape-as-varint": (floats([1]) + vi(7, 1), ["blob shape (field 7) has wire type 0"]),
    "data-runs-past-blob": (_varint((5 << 3) | 2) + _varint(1000) + b"\0" * 8, ["past the end"]),
    "varint-too-long": (b"\x08" + b"\xff" * 11, ["varint longer than 10 bytes"]),
    "legacy-negative": (floats([1]) + vi(1, -1) + vi(2, 1) + vi(3, 1) + vi(4, 1), ["negative dimension"]),
}


@pytest.mark.parametrize("case", sorted(CORRUPT_BLOBS))
def test_corrupt_payload_is_a_located_error(tmp_path, case):
    blob, must = CORRUPT_BLOBS[case]
    path = tmp_path / "w.caffemodel"
    path.write_bytes(ld(1, b"net") + layer(b"fc", blob))
    with pytest.raises(ModelError) as info:
        read_caffemodel(path)
    msg = str(info.value)
    assert str(path) in msg and "at byte" in msg, msg
    for piece in must:
        assert piece in msg, msg
    if "varint" not in case:
        assert "layer 'fc'" in msg, msg


@pytest.mark.parametrize("case", ["float-bytes-not-whole", "negative-dim", "data-as-varint"])
def test_corrupt_payload_through_the_cli(tmp_path, capsys, case):
    p = write(tmp_path, "net.prototxt", GOOD_NET)
    blobs = good_blobs()
    m = write_model(tmp_path / "w.caffemodel", {"conv1": blobs["conv1"]})
    m.write_bytes(m.read_bytes() + layer(b"fc", CORRUPT_BLOBS[case][0]))
    assert_refused(capsys, tmp_path, ["convert", p, m, "-o", tmp_path / "out" / "m"],
                   [str(m), "layer 'fc'", *CORRUPT_BLOBS[case][1]])


def test_reads_what_protobuf_reads(tmp_path):
    """Control: a caffemodel written by protobuf (packed floats, shapes, several layers, a
    legacy 4-D blob, a V1 layer) reads back to the same arrays."""
    net = caffe_pb.NetParameter(name="n")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 2, 2, 2)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    lp = net.layer.add(name="conv", type="Convolution")
    blob = lp.blobs.add()
    blob.shape.dim.extend(a.shape)
    blob.data.extend(a.ravel().tolist())
    blob = lp.blobs.add(num=1, channels=1, height=1, width=5)
    blob.double_data.extend(b.astype(np.float64).tolist())
    lp.convolution_param.num_output = 3  # a parameter message in the way, never decoded
    v1 = caffe_pb.NetParameter(name="v1")
    old = v1.layers.add(name="ip", type=caffe_pb.V1LayerParameter.INNER_PRODUCT)
    ob = old.blobs.add(num=1, channels=1, height=1, width=5)
    ob.data.extend(b.tolist())
    (tmp_path / "a.caffemodel").write_bytes(net.SerializeToString())
    (tmp_path / "b.caffemodel").write_bytes(v1.SerializeToString())
    got = read_caffemodel(tmp_path / "a.caffemodel")["conv"]
    np.testing.assert_array_equal(got.blobs[0], a)
    np.testing.assert_array_equal(got.blobs[1].reshape(-1), b)
    assert got.legacy == (False, True) and got.blobs[1].shape == (1, 1, 1, 5) and got.type == "Convolution"
    v1got = read_caffemodel(tmp_path / "b.caffemodel")["ip"]
    assert v1got.type == "INNER_PRODUCT" and v1got.legacy == (True,)
    np.testing.assert_array_equal(v1got.blobs[0].reshape(-1), b)


def test_unpacked_values_and_v0_layers(tmp_path):
    """Values written one field each (pre-packed Caffe) and a V0 layer inside a V1 one."""
    vals = np.arange(7, dtype=np.float32) / 4
    unpacked = b"".join(b"\x2d" + struct.pack("<f", v) for v in vals)
    dunpacked = b"".join(b"\x41" + struct.pack("<d", v) for v in vals.astype(np.float64))
    v0 = ld(1, b"old") + ld(2, b"innerproduct") + ld(50, unpacked + packed_dims(7))
    data = (ld(100, ld(1, b"a") + ld(7, unpacked + packed_dims(7)) + ld(7, packed_dims(7) + dunpacked))
            + ld(2, ld(1, v0)))
    (tmp_path / "u.caffemodel").write_bytes(data)
    got = read_caffemodel(tmp_path / "u.caffemodel")
    np.testing.assert_array_equal(got["a"].blobs[0], vals)
    np.testing.assert_array_equal(got["a"].blobs[1], vals)
    assert got["old"].type == "innerproduct"
    np.testing.assert_array_equal(got["old"].blobs[0], vals)


def test_parameter_messages_are_never_decoded(tmp_path):
    """Field 147 written as a varint (BVLC's clip_param has a message there, the fork's
    interp_param too): the reader skips it whatever its wire shape."""
    data = layer(b"fc", floats([1, 2]) + packed_dims(2), extra=vi(147, 5) + ld(148, b"\xff\xff"))
    (tmp_path / "w.caffemodel").write_bytes(data)
    np.testing.assert_array_equal(read_caffemodel(tmp_path / "w.caffemodel")["fc"].blobs[0], [1, 2])


def test_only_wanted_layers_are_read(tmp_path):
    data = layer(b"a", floats([1]) + packed_dims(1)) + layer(b"b", ld(5, b"\0" * 7) + packed_dims(2))
    (tmp_path / "w.caffemodel").write_bytes(data)
    assert set(read_caffemodel(tmp_path / "w.caffemodel", layers={"a"})) == {"a"}  # b's bad blob is skipped
    with pytest.raises(ModelError):
        read_caffemodel(tmp_path / "w.caffemodel")


def test_a_file_over_2gb_reads(tmp_path):
    """A 3 GB caffemodel (sparse on disk): a layer whose parameter field is 3 GB long, then
    real layers past the 2 GB (and 32-bit) boundary. The reader seeks over the field, reads the
    layers after it, and its memory does not grow with the file."""
    big = 3 << 30
    inner = ld(1, b"huge") + ld(2, b"Python") + _varint((999 << 3) | 2) + _varint(big)
    head = ld(1, b"net") + _varint((100 << 3) | 2) + _varint(len(inner) + big) + inner
    tail = layer(b"fc", floats([1, 2, 3]) + packed_dims(3)) + layer(b"conv", floats([4]) + packed_dims(1, 1, 1, 1))
    path = tmp_path / "big.caffemodel"
    try:
        with open(path, "wb") as f:
            f.write(head)
            f.seek(big, os.SEEK_CUR)  # a hole: no disk blocks, no memory
            f.write(tail)
    except OSError as exc:
        pytest.skip(f"cannot write a sparse 3 GB file here ({exc.strerror})")
    assert path.stat().st_size > 3 << 30
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    got = read_caffemodel(path)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert sorted(got) == ["conv", "fc"]
    np.testing.assert_array_equal(got["fc"].blobs[0], [1, 2, 3])
    assert got["conv"].blobs[0].shape == (1, 1, 1, 1)
    assert grown_mb < 64, f"reading grew the peak RSS by {grown_mb:.0f} MB"


def test_lengths_past_32_bits_decode(tmp_path):
    """Lengths and offsets are Python integers: a field length over 2**32 that runs past the
    file is reported as such (not wrapped into a small number)."""
    path = tmp_path / "w.caffemodel"
    path.write_bytes(_varint((100 << 3) | 2) + _varint(2**33 + 5) + b"\0" * 16)
    with pytest.raises(ModelError, match=f"runs {2**33 + 5 - 16} bytes past the end"):
        read_caffemodel(path)
