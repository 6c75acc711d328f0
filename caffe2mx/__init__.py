"""caffe2mx: reproduce Caffe networks in Apache MXNet and prove the numbers did not change."""
__version__ = "0.1.0"

import os as _os

_os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")

from .api import convert  # noqa: E402,F401
from .mxmodels.training import train  # noqa: E402,F401
