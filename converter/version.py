"""The one version string of caffe2mx (read by setup.py, the CLI, ONNX metadata and reports).

It lives in the bottom layer so that every layer can read it without importing upwards.
"""
VERSION = "0.2.0"
