"""Network inputs for verify: seeded random, .npy/.npz, images with Caffe preprocessing presets."""
import numpy as np
import pytest

from caffe2mx.converter.errors import UsageError
from caffe2mx.verify.inputs import PRESETS, load_inputs, preprocess, random_inputs

SHAPES = {"data": (2, 3, 4, 5)}


def _png(path, rgb):
    """A minimal RGB PNG (filter 0 rows), so the test needs no imaging library."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[i].astype(np.uint8).tobytes() for i in range(h))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def _ppm(path, rgb):
    h, w, _ = rgb.shape
    path.write_bytes(f"P6 {w} {h} 255\n".encode() + rgb.astype(np.uint8).tobytes())
    return path


def test_random_is_seeded_and_shaped():
    a, b, c = random_inputs(SHAPES, 1), random_inputs(SHAPES, 1), random_inputs(SHAPES, 2)
    assert a["data"].shape == (2, 3, 4, 5) and a["data"].dtype == np.float32
    np.testing.assert_array_equal(a["data"], b["data"])
    assert not np.array_equal(a["data"], c["data"])
    assert -1 <= a["data"].min() and a["data"].max() <= 1


def test_npy_and_npz(tmp_path):
    x = np.arange(120, dtype=np.float64).reshape(2, 3, 4, 5)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", data=x)
    for name in ("x.npy", "x.npz"):
        got = load_inputs(str(tmp_path / name), SHAPES)["data"]
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, x)
    np.save(tmp_path / "one.npy", x[0])
    assert load_inputs(str(tmp_path / "one.npy"), {"data": (1, 3, 4, 5)})["data"].shape == (1, 3, 4, 5)
    np.save(tmp_path / "bad.npy", x[:, :2])
    with pytest.raises(UsageError, match="shape"):
        load_inputs(str(tmp_path / "bad.npy"), SHAPES)
    np.savez(tmp_path / "wrong.npz", other=x)
    with pytest.raises(UsageError, match="no array for net input"):
        load_inputs(str(tmp_path / "wrong.npz"), SHAPES)


@pytest.mark.parametrize("writer", [_png, _ppm], ids=["png", "ppm"])
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_image_presets(tmp_path, preset, writer):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    path = writer(tmp_path / ("im.png" if writer is _png else "im.ppm"), rgb)
    x = load_inputs(str(path), SHAPES, prep=preprocess(preset))["data"]
    prep = PRESETS[preset]
    order = [200, 100, 50] if prep.channel_order == "rgb" else [50, 100, 200]
    want = (np.asarray(order, np.float32) - np.asarray(prep.mean, np.float32)) * np.float32(prep.scale)
    assert x.shape == (2, 3, 4, 5)
    np.testing.assert_allclose(x[1, :, 2, 3], want, rtol=1e-6)


def test_imagenet_is_bgr_mean_subtracted_and_face_is_centred():
    assert PRESETS["imagenet"].channel_order == "bgr" and PRESETS["imagenet"].mean == (104.0, 117.0, 123.0)
    face = PRESETS["face"]
    assert face.mean == (127.5,) * 3 and face.scale == 1 / 128


def test_image_is_resized_to_the_net(tmp_path):
    rgb = np.full((10, 12, 3), 7, np.uint8)
    for path in (_ppm(tmp_path / "big.ppm", rgb), _png(tmp_path / "big.png", rgb)):
        x = load_inputs(str(path), SHAPES, prep=preprocess("caffe-0-255"))["data"]
        assert x.shape == (2, 3, 4, 5) and np.allclose(x, 7)


def test_options_override_the_preset():
    p = preprocess("imagenet", mean="1,2,3", scale=0.5, channel_order="rgb")
    assert (p.mean, p.scale, p.channel_order) == ((1.0, 2.0, 3.0), 0.5, "rgb")
    assert preprocess(mean="10").mean == (10.0, 10.0, 10.0)
    for bad in ({"preset": "nope"}, {"mean": "1,2"}, {"mean": "a,b,c"}, {"channel_order": "gbr"}):
        with pytest.raises(UsageError):
            preprocess(**bad)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        load_inputs(str(tmp_path / "none.png"), SHAPES)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(UsageError, match="not an image"):
        load_inputs(str(tmp_path / "x.txt"), SHAPES)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(UsageError, match="cannot read image"):
        load_inputs(str(tmp_path / "broken.png"), SHAPES)
