"""The one sanitizer from Caffe names to MXNet names."""
import re

_BAD = re.compile(r"[^A-Za-z0-9_]")


class NameAllocator:
    """Deterministic, unique MXNet names: `conv1/bn` -> `conv1_bn`, clashes get `_2`, `_3`..."""

    def __init__(self, reserved=()):
        self._used = set(reserved)

    def __call__(self, caffe_name):
        base = _BAD.sub("_", caffe_name) or "layer"
        if base[0].isdigit():
            base = "l_" + base
        name, k = base, 1
        while name in self._used:
            k += 1
            name = f"{base}_{k}"
        self._used.add(name)
        return name
