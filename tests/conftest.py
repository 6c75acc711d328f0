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


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False,
                     help="also run tests marked slow (full-length training runs; CAFFE2MX_SLOW=1 too)")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: full-length runs, skipped unless --slow or CAFFE2MX_SLOW=1")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow") or os.environ.get("CAFFE2MX_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --slow (or CAFFE2MX_SLOW=1)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
