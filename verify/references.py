"""Where reference activations come from: a Caffe dump (.npz), the NumPy reference, ONNX Runtime.

Each source yields a Reference: `blobs` keyed by Caffe name (the value after the forward
pass; a dump's are read from its file one at a time). The NumPy reference sees every
in-place step (`x`, `x@1`, ...) and is computed layer by layer while verify runs, which
lets a comparison name one layer inside an in-place chain.
"""
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from caffe2mx.converter.errors import UsageError

META_KEY = "__caffe2mx_meta__"
INPUT_PREFIX = "__input__/"


@dataclass
class Reference:
    kind: str
    blobs: dict
    inputs: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


class StoredArrays(Mapping):
    """The blobs of a .npz, read from the file one at a time when asked for, never all at once."""

    def __init__(self, npz, names):
        self._npz, self._names, self._known = npz, list(names), set(names)

    def __getitem__(self, name):
        if name not in self._known:
            raise KeyError(name)
        return self._npz[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)


def _member_dtype(archive, key):
    """The dtype in a .npy member's header, without reading its data."""
    with archive.open(key + ".npy") as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return read(fh)[2]


def read_activations(path):
    """A Caffe dump: every blob by its exact name (read lazily); the fed input and metadata when present."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: reference file not found")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{path}: cannot read as a .npz of activations ({exc})") from None
    if isinstance(loaded, np.ndarray):
        raise UsageError(f"{path}: a single array, not a .npz of blob name -> activation")
    names, inputs, meta = [], {}, {}
    try:
        with zipfile.ZipFile(path) as archive:
            for key in loaded.files:
                if key == META_KEY:
                    try:
                        meta = json.loads(str(loaded[key]))
                    except ValueError:
                        raise UsageError(f"{path}: {META_KEY} is not JSON") from None
                elif key.startswith(INPUT_PREFIX):
                    inputs[key[len(INPUT_PREFIX):]] = np.asarray(loaded[key], np.float32)
                else:
                    if not np.issubdtype(_member_dtype(archive, key), np.number):
                        raise UsageError(f"{path}: non-numeric array for blob {key!r}")
                    names.append(key)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{path}: cannot read as a .npz of activations ({exc})") from None
    return Reference(kind="caffe", blobs=StoredArrays(loaded, names), inputs=inputs, meta=meta)


def inputs_from_dump(ref, input_shapes, in_place_inputs=()):
    """The input a dump was made with: its stored input, else the input blob itself.

    An input blob that some layer rewrites in place no longer holds the input after the
    forward pass, so it is not usable then.
    """
    out = {}
    for name in input_shapes:
        if name in ref.inputs:
            out[name] = ref.inputs[name]
        elif name in ref.blobs and name not in in_place_inputs:
            out[name] = np.asarray(ref.blobs[name], np.float32)
        else:
            return None
    return out


def numpy_reference(graph):
    """The built-in NumPy forward of Caffe semantics: computed layer by layer as verify runs
    (parity.ComparisonRun), so here only which blobs it will hold."""
    try:
        from caffe2mx.verify import numpy_ref
        numpy_ref.check_supported(graph)
    except ImportError as exc:
        raise UsageError(f"the NumPy reference is not available ({exc})") from None
    return Reference(kind="numpy", blobs=dict.fromkeys(graph.final_version))


def onnx_reference(conversion, inputs, onnx_path=None):
    """ONNX Runtime on the exported model: `onnx_path`, else exported now from `conversion`.

    This checks the ONNX export against MXNet, not MXNet against Caffe.
    """
    try:
        from caffe2mx.converter import onnx_export
    except ImportError:
        raise UsageError("--reference onnxruntime is not available: this caffe2mx has no ONNX export "
                         "(caffe2mx.converter.onnx_export)") from None
    if onnx_path is not None and not Path(onnx_path).is_file():
        raise UsageError(f"--onnx {onnx_path}: file not found")
    model = onnx_path if onnx_path is not None else onnx_export.export_conversion(conversion)
    try:
        blobs = onnx_export.run_onnx_blobs(str(model) if onnx_path is not None else model, inputs)
    except ImportError as exc:
        raise UsageError(f"--reference onnxruntime needs onnxruntime ({exc}): pip install 'caffe2mx[onnx]'") from None
    return Reference(kind="onnxruntime", blobs=blobs, meta={"onnx": str(onnx_path) if onnx_path else "exported now"})
