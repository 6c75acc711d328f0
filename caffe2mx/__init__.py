"""caffe2mx: reproduce Caffe networks in Apache MXNet and prove the numbers did not change."""
__version__ = "0.1.0"
