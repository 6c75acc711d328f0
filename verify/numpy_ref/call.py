"""What a layer function receives: its node, bottom arrays, blobs and run options.

Blob shapes are checked here, once, against the canonical Caffe shape each layer asks
for, so that legacy 4-D blobs and wrongly shaped weights fail with the layer named.
"""
from dataclasses import dataclass, field

import numpy as np

from caffe2mx.converter.errors import ModelError

FLT_MAX = float(np.finfo(np.float32).max)


@dataclass
class LayerCall:
    node: object
    bottoms: list
    blobs: tuple = ()
    legacy: tuple = None  # per blob: True if stored with legacy num/channels/height/width dims
    dtype: type = np.float64
    options: dict = field(default_factory=dict)
    feeds: dict = field(default_factory=dict)
    file: str = None

    @property
    def param(self):
        return self.node.param

    def error(self, message):
        return ModelError(message, file=self.file, line=self.node.line, layer=self.node.name,
                          layer_type=self.node.type)

    def expect_bottoms(self, *counts):
        if len(self.bottoms) not in counts:
            want = " or ".join(str(c) for c in counts)
            raise self.error(f"takes {want} bottom(s), got {len(self.bottoms)}")

    def expect_blobs(self, count):
        if len(self.blobs) != count:
            if not self.blobs:
                raise self.error(f"needs {count} learned blob(s) but has none: pass a caffemodel "
                                 f"(weights=) or a graph with bound weights")
            raise self.error(f"needs {count} learned blob(s), the weights hold {len(self.blobs)}")

    def blob(self, index, shape):
        """Blob `index` as an array of `shape` in the compute dtype.

        Accepted: the exact shape; the same dims up to extra 1s (e.g. (1,C,1,1) for (C,));
        a legacy 4-D blob with the same element count.
        """
        arr = np.asarray(self.blobs[index])
        shape = tuple(int(d) for d in shape)
        if arr.shape != shape:
            squeezed_equal = _non_unit(arr.shape) == _non_unit(shape)
            legacy = bool(self.legacy and self.legacy[index])
            if arr.size != int(np.prod(shape)) or not (squeezed_equal or legacy):
                kind = "legacy num/channels/height/width " if legacy else ""
                raise self.error(f"blob {index} has {kind}shape {list(arr.shape)} ({arr.size} values) "
                                 f"but this layer needs {list(shape)}")
            arr = arr.reshape(shape)
        return arr.astype(self.dtype, copy=False)


def _non_unit(shape):
    return tuple(d for d in shape if d != 1)


def canonical_axis(call, axis, ndim, what="axis"):
    if not -ndim <= axis < ndim:
        raise call.error(f"{what} {axis} is out of range for a {ndim}-D bottom")
    return axis % ndim


def broadcast_shape(ndim, axis, shape):
    """Shape that places `shape` at `axis` of an `ndim`-D array, 1 elsewhere."""
    return (1,) * axis + tuple(shape) + (1,) * (ndim - axis - len(shape))
