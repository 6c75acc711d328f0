"""Hand-written Gluon reproductions of the architectures caffe2mx converts."""
from .registry import get_model, list_models, register_model  # noqa: F401
