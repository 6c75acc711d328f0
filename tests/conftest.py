"""Shared test helpers: where ../shared is, and quiet MXNet."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
GOLDEN = SHARED / "fixtures" / "caffe-golden"
UPSTREAM = SHARED / "fixtures" / "upstream"
PROTOTXTS = sorted((REPO / "prototxts").glob("*.prototxt"))


def need_shared(path):
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared fixtures live beside the repository (../shared)")
    return path
