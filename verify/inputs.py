"""Network inputs for a parity run: an image, a .npy/.npz, or seeded random values.

An image goes through the preprocessing Caffe models were trained with; the common
recipes are presets so that a comparison uses the same numbers the model expects:
    x = (pixel_0_255[channel order] - mean) * scale, resized to the net's H x W.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from caffe2mx.converter.errors import UsageError
from caffe2mx.converter.mxnet_import import import_mxnet


@dataclass(frozen=True)
class Preprocess:
    channel_order: str = "bgr"   # order of the channels the net sees
    mean: tuple = (0.0, 0.0, 0.0)  # per channel, in `channel_order`, on the 0-255 scale
    scale: float = 1.0
    description: str = ""


PRESETS = {
    "imagenet": Preprocess("bgr", (104.0, 117.0, 123.0), 1.0,
                           "BGR, 0-255, ImageNet mean (104, 117, 123) subtracted (BVLC / Residual Attention)"),
    "caffe-0-255": Preprocess("bgr", (0.0, 0.0, 0.0), 1.0, "BGR, 0-255, no mean"),
    "face": Preprocess("bgr", (127.5, 127.5, 127.5), 1.0 / 128, "BGR, (x - 127.5) / 128 (face recognition nets)"),
    "rgb-0-1": Preprocess("rgb", (0.0, 0.0, 0.0), 1.0 / 255, "RGB, 0-1"),
}

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm", ".webp"}


def random_inputs(input_shapes, seed=0):
    """U(-1, 1) float32 per input, drawn in input order from one seeded generator."""
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-1, 1, tuple(shape)).astype(np.float32) for name, shape in input_shapes.items()}


def _fit_array(name, arr, shape, source):
    arr = np.asarray(arr)
    if not np.issubdtype(arr.dtype, np.number):
        raise UsageError(f"{source}: input '{name}' is not numeric (dtype {arr.dtype})")
    shape = tuple(shape)
    if arr.shape == shape[1:] and shape[0] == 1:
        arr = arr[None]
    if arr.shape != shape:
        raise UsageError(f"{source}: input '{name}' has shape {list(arr.shape)}, the net needs {list(shape)}")
    return arr.astype(np.float32)


def array_inputs(path, input_shapes):
    """Inputs from a .npy (single-input nets) or a .npz keyed by input name."""
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read as a NumPy file ({exc})") from None
    names = list(input_shapes)
    if isinstance(loaded, np.ndarray):
        if len(names) != 1:
            raise UsageError(f"{path}: a .npy gives one input but the net has {len(names)} ({', '.join(names)}); "
                             f"use a .npz keyed by input name")
        return {names[0]: _fit_array(names[0], loaded, input_shapes[names[0]], path)}
    with loaded:
        missing = [n for n in names if n not in loaded.files]
        if missing:
            raise UsageError(f"{path}: no array for net input(s) {', '.join(missing)} (keys: {', '.join(loaded.files)})")
        return {n: _fit_array(n, loaded[n], input_shapes[n], path) for n in names}


def _read_netpbm(path):
    """Binary PPM (P6) / PGM (P5), 8-bit: read here, since MXNet's decoder skips them."""
    data = Path(path).read_bytes()
    tokens, pos = [], 0
    while len(tokens) < 4:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        start = pos
        while pos < len(data) and not data[pos:pos + 1].isspace():
            pos += 1
        tokens.append(data[start:pos])
    magic, w, h, maxval = tokens[0], int(tokens[1]), int(tokens[2]), int(tokens[3])
    if magic not in (b"P5", b"P6") or maxval != 255:
        raise ValueError("only 8-bit binary P5/P6 netpbm files are read")
    c = 3 if magic == b"P6" else 1
    pixels = np.frombuffer(data, np.uint8, count=w * h * c, offset=pos + 1).reshape(h, w, c)
    return np.repeat(pixels, 3, axis=2) if c == 1 else pixels


def _read_image(path):
    """HxWx3 uint8 RGB, through Pillow if present, else MXNet's OpenCV-backed decoder."""
    if Path(path).suffix.lower() in (".ppm", ".pgm"):
        try:
            return _read_netpbm(path)
        except (ValueError, IndexError) as exc:
            raise UsageError(f"{path}: cannot read image ({exc})") from None
    try:
        from PIL import Image
    except ImportError:
        Image = None
    if Image is not None:
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except OSError as exc:
            raise UsageError(f"{path}: cannot read image ({exc})") from None
    mx = import_mxnet()
    try:
        return mx.image.imread(str(path), flag=1, to_rgb=True).asnumpy()
    except Exception as exc:  # mxnet raises MXNetError for undecodable files
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise UsageError(f"{path}: cannot read image ({lines[-1] if lines else type(exc).__name__})") from None


def _resize(rgb, height, width):
    if rgb.shape[:2] == (height, width):
        return rgb
    try:
        from PIL import Image
        return np.asarray(Image.fromarray(rgb).resize((width, height), Image.BILINEAR))
    except ImportError:
        mx = import_mxnet()
        return mx.image.imresize(mx.nd.array(rgb, dtype="uint8"), width, height, interp=1).asnumpy()


def image_inputs(path, input_shapes, prep):
    """One image, preprocessed with `prep`, for a single-input 3-channel net (batch repeated)."""
    names = list(input_shapes)
    if len(names) != 1:
        raise UsageError(f"{path}: an image gives one input but the net has {len(names)}")
    shape = tuple(input_shapes[names[0]])
    if len(shape) != 4 or shape[1] != 3:
        raise UsageError(f"{path}: an image needs a N x 3 x H x W input, the net's '{names[0]}' is {list(shape)}")
    rgb = _resize(_read_image(path), shape[2], shape[3]).astype(np.float32)
    if prep.channel_order == "bgr":
        rgb = rgb[:, :, ::-1]
    x = (rgb - np.asarray(prep.mean, np.float32)) * np.float32(prep.scale)
    chw = np.ascontiguousarray(x.transpose(2, 0, 1))
    return {names[0]: np.repeat(chw[None], shape[0], axis=0).astype(np.float32)}


def preprocess(preset=None, mean=None, scale=None, channel_order=None):
    """A Preprocess from a preset name, each explicit option overriding it."""
    if preset is not None and preset not in PRESETS:
        raise UsageError(f"unknown preprocessing preset {preset!r}; presets: {', '.join(PRESETS)}")
    base = PRESETS[preset or "imagenet"]
    if mean is not None:
        try:
            values = tuple(float(v) for v in str(mean).split(","))
        except ValueError:
            raise UsageError(f"--mean takes 1 or 3 comma-separated numbers, not {mean!r}") from None
        if len(values) not in (1, 3):
            raise UsageError(f"--mean takes 1 or 3 comma-separated numbers, not {mean!r}")
        base = Preprocess(base.channel_order, values * (3 // len(values)), base.scale, "custom")
    if scale is not None:
        base = Preprocess(base.channel_order, base.mean, float(scale), "custom")
    if channel_order is not None:
        if channel_order not in ("bgr", "rgb"):
            raise UsageError(f"channel order must be bgr or rgb, not {channel_order!r}")
        base = Preprocess(channel_order, base.mean, base.scale, "custom")
    return base


def load_inputs(source, input_shapes, *, seed=0, prep=None):
    """{input name: float32 array} from None/'random' (seeded), a .npy/.npz, an image file, or
    a dict of arrays by input name (the API)."""
    if source is None or source == "random":
        return random_inputs(input_shapes, seed)
    if isinstance(source, dict):
        missing = [n for n in input_shapes if n not in source]
        if missing:
            raise UsageError(f"no value for input(s) {', '.join(missing)}")
        return {n: np.asarray(source[n], np.float32) for n in input_shapes}
    path = Path(source)
    if not path.is_file():
        raise UsageError(f"{source}: input file not found")
    if path.suffix.lower() in (".npy", ".npz"):
        return array_inputs(path, input_shapes)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return image_inputs(path, input_shapes, prep or preprocess())
    raise UsageError(f"{source}: not an image ({', '.join(sorted(IMAGE_SUFFIXES))}), .npy or .npz")
