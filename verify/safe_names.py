"""File names for things named by Caffe blobs or layers.

Blob names may hold anything (`conv1/bn`, `../../x`, `/etc/passwd`), so a name is never
used as a path: it becomes one flat, readable file name plus a short hash of the
original, so two names that clean to the same text still get different files.
"""
import hashlib
import re
from pathlib import Path

_KEEP = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_STEM = 60


def safe_stem(name):
    """A flat file-name stem for `name`: only [A-Za-z0-9_.-], no leading dot, hash-suffixed."""
    text = str(name)
    cleaned = _KEEP.sub("_", text).strip("._-")[:MAX_STEM] or "blob"
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned}-{digest}"


def safe_path(directory, name, suffix):
    """`directory/<safe_stem(name)><suffix>`, checked to lie inside `directory`."""
    root = Path(directory).resolve()
    if "/" in suffix or "\\" in suffix or suffix.startswith(".."):
        raise ValueError(f"bad suffix {suffix!r}")
    path = (root / (safe_stem(name) + suffix)).resolve()
    if path.parent != root:
        raise ValueError(f"{name!r} would leave {root}")
    return path
