"""What the data layers of a net produce, so that they can become the net's inputs.

A deploy conversion has no database, image list or HDF5 file behind a data layer: the
layer's tops become the converted net's inputs, and the caller feeds what the layer
would have produced (after its preprocessing: mean, scale, crop). Their shapes follow
the layer's own reshape rules in Caffe (and in the SSD and TSN forks for their layers):

* Data, AnnotatedData (SSD): (batch_size, C, H, W). C is what the database's images
  have: 3 with `force_color`, 1 with `force_gray`, else the number of `mean_value`s when
  there are several (Caffe needs one per channel), else unknown. H, W: `crop_size` (or
  SSD's crop_h/crop_w), else SSD's resize_param height/width, else unknown.
* ImageData: (batch_size, 3 if is_color else 1, H, W), H, W as above with the layer's
  new_height/new_width as the image size.
* MemoryData: (batch_size, channels, height, width), all from its parameters.
* WindowData: (batch_size, C, crop_size, crop_size), C as for Data.
* HDF5Data: the HDF5 datasets' shapes, never known from the net.
* DummyData: its `shape`s (or num/channels/height/width), one per top or one for all.
* VideoData: TSN's form (frames listed in `source`): (batch_size, 3 or 2 (RGB or FLOW)
  x new_length x num_segments, H, W); SSD's form (a camera or a video file):
  (data_param.batch_size, 3, H, W), H, W from its transform_param.
* A second top (the label): (batch_size,) for most layers, (batch_size, 1, 1, 1) for
  TSN's VideoData, SSD's (1, 1, boxes, 8) box list for AnnotatedData, whose length
  depends on the image (1 box here).

An unknown dimension is None: the caller then asks for `--input-shape`. A top that no
layer reads (the label, in a deploy net) need not become an input at all.
"""
from dataclasses import dataclass

DATA_LAYER_TYPES = ("Data", "ImageData", "MemoryData", "WindowData", "HDF5Data", "DummyData",
                    "AnnotatedData", "VideoData")

#: the parameter message each data layer type reads its source from
DATA_PARAM_FIELDS = {"Data": "data_param", "ImageData": "image_data_param", "MemoryData": "memory_data_param",
                     "WindowData": "window_data_param", "HDF5Data": "hdf5_data_param",
                     "DummyData": "dummy_data_param", "AnnotatedData": "annotated_data_param",
                     "VideoData": "video_data_param"}


@dataclass(frozen=True)
class TopShape:
    """A data layer top's shape; `shape` holds None where a dimension cannot be known, `why` says why."""

    top: str
    shape: tuple
    why: str = ""
    label: bool = False

    @property
    def known(self):
        return all(d is not None for d in self.shape)


def _positive(v):
    return int(v) if v and int(v) > 0 else None


def _channels(t):
    """Channels of database/window images, where the transform parameters tell them."""
    if t.force_color:
        return 3, ""
    if t.force_gray:
        return 1, ""
    if len(t.mean_value) > 1:
        return len(t.mean_value), ""
    return None, "the channels of the stored images"


def _height_width(t, base=(None, None)):
    """H, W after the transform: crop, else SSD's resize, else the source images' own size."""
    crop_h = _positive(t.crop_size) or _positive(t.crop_h)
    crop_w = _positive(t.crop_size) or _positive(t.crop_w)
    h, w = base
    if t.HasField("resize_param"):
        r = t.resize_param
        fits_image = r.resize_mode == r.FIT_SMALL_SIZE
        h, w = (None, None) if fits_image else (_positive(r.height), _positive(r.width))
    h, w = crop_h or h, crop_w or w
    return (h, w), ("" if h and w else "the height and width of the source images")


def _label(layer, shape):
    return [TopShape(layer.top[1], shape, label=True)] if len(layer.top) > 1 else []


def _data(layer, batch):
    t = layer.transform_param
    c, why_c = _channels(t)
    (h, w), why_hw = _height_width(t)
    why = " and ".join(x for x in (why_c, why_hw) if x)
    return TopShape(layer.top[0], (batch, c, h, w), why)


def _data_layer(layer):
    batch = _positive(layer.data_param.batch_size)
    return [_data(layer, batch)] + _label(layer, (batch,))


def _annotated_data(layer):
    batch = _positive(layer.data_param.batch_size)
    return [_data(layer, batch)] + _label(layer, (1, 1, 1, 8))


def _image_data(layer):
    p = layer.image_data_param
    batch = _positive(p.batch_size)
    base = (_positive(p.new_height), _positive(p.new_width)) if p.new_height and p.new_width else (None, None)
    (h, w), why = _height_width(layer.transform_param, base)
    return [TopShape(layer.top[0], (batch, 3 if p.is_color else 1, h, w), why)] + _label(layer, (batch,))


def _memory_data(layer):
    p = layer.memory_data_param
    shape = tuple(_positive(getattr(p, f)) for f in ("batch_size", "channels", "height", "width"))
    why = "" if all(shape) else "memory_data_param lacks " + ", ".join(
        f for f, d in zip(("batch_size", "channels", "height", "width"), shape) if not d)
    return [TopShape(layer.top[0], shape, why)] + _label(layer, (shape[0],))


def _window_data(layer):
    t = layer.transform_param
    batch = _positive(layer.window_data_param.batch_size)
    c, why = _channels(t)
    crop = _positive(t.crop_size)
    if crop is None:
        why = " and ".join(x for x in (why, "a crop_size (WindowData needs one)") if x)
    return [TopShape(layer.top[0], (batch, c, crop, crop), why)] + _label(layer, (batch,))


def _hdf5_data(layer):
    batch = _positive(layer.hdf5_data_param.batch_size)
    return [TopShape(t, (batch, None, None, None), "the shapes of the HDF5 datasets") for t in layer.top]


def _dummy_data(layer):
    p, n = layer.dummy_data_param, len(layer.top)
    if p.shape:
        shapes = [tuple(int(d) for d in s.dim) for s in p.shape]
    else:
        dims = [list(getattr(p, f)) for f in ("num", "channels", "height", "width")]
        if any(len(d) not in (1, n) for d in dims):
            return [TopShape(t, (None,) * 4, "num/channels/height/width need one value each, or one per top")
                    for t in layer.top]
        shapes = [tuple(int(d[i if len(d) > 1 else 0]) for d in dims) for i in range(n)]
    if len(shapes) == 1:
        shapes *= n
    if len(shapes) != n:
        return [TopShape(t, (None,) * 4, f"{len(shapes)} shapes for {n} tops") for t in layer.top]
    return [TopShape(t, s) for t, s in zip(layer.top, shapes)]


def _video_data(layer):
    v, t = layer.video_data_param, layer.transform_param
    ssd = any(v.HasField(f) for f in ("video_type", "device_id", "video_file", "skip_frames")) or (
        layer.data_param.HasField("batch_size") and not v.HasField("batch_size"))
    if ssd:
        batch = _positive(layer.data_param.batch_size)
        (h, w), why = _height_width(t)
        return [TopShape(layer.top[0], (batch, 3, h, w), why)] + _label(layer, (batch,))
    batch = _positive(v.batch_size)
    per_frame = 3 if v.modality == v.RGB else 2
    base = (_positive(v.new_height), _positive(v.new_width)) if v.new_height and v.new_width else (None, None)
    (h, w), why = _height_width(t, base)
    channels = per_frame * max(v.new_length, 1) * max(v.num_segments, 1)
    return [TopShape(layer.top[0], (batch, channels, h, w), why)] + _label(layer, (batch, 1, 1, 1))


_RULES = {"Data": _data_layer, "ImageData": _image_data, "MemoryData": _memory_data,
          "WindowData": _window_data, "HDF5Data": _hdf5_data, "DummyData": _dummy_data,
          "AnnotatedData": _annotated_data, "VideoData": _video_data}


def data_layer_tops(layer):
    """[TopShape] for each top of a data layer (a LayerParameter whose type is in DATA_LAYER_TYPES)."""
    if not layer.top:
        return []
    tops = _RULES[layer.type](layer)
    if len(tops) < len(layer.top):
        tops += [TopShape(t, (None,), "this data layer has no such top in Caffe") for t in layer.top[len(tops):]]
    return [t if t.known or t.why else TopShape(t.top, t.shape, "its batch size is not set", t.label) for t in tops]


def pattern(shape):
    """`64,C,227,227`: a shape with its unknown dims named, for an --input-shape example."""
    names = "NCHW" if len(shape) == 4 else [f"D{i}" for i in range(len(shape))]
    return ",".join(str(d) if d is not None else names[i] for i, d in enumerate(shape))
