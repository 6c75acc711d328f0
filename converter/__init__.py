"""Caffe -> MXNet conversion: parsing, intermediate graph, layer handlers, emission."""
