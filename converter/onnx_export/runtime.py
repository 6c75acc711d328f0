"""Run an exported model in ONNX Runtime and read Caffe blobs back through its metadata."""
import json

import numpy as np

from ..errors import ModelError, UsageError


def _load(model_or_path):
    import onnx
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    return onnx.load(str(model_or_path))


def model_blob_map(model):
    """(inputs, outputs, blobs): Caffe blob -> ONNX value name, from the caffe2mx metadata."""
    meta = {p.key: p.value for p in model.metadata_props}
    if "caffe2mx.blobs" not in meta:
        raise ModelError("this ONNX model carries no caffe2mx blob map (was it written by caffe2mx export-onnx?)")
    return (json.loads(meta["caffe2mx.inputs"]), json.loads(meta["caffe2mx.outputs"]),
            json.loads(meta["caffe2mx.blobs"]))


class OnnxRunner:
    """One ONNX Runtime session that also exposes the requested intermediate blobs."""

    def __init__(self, model_or_path, blobs=None, threads=None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise UsageError("onnxruntime is not installed: pip install 'caffe2mx[onnx]'") from None
        model = _load(model_or_path)
        self.inputs, self.outputs, blob_map = model_blob_map(model)
        wanted = list(blob_map) if blobs is None else list(blobs)
        graph_outputs = {o.name for o in model.graph.output}
        produced = {out for n in model.graph.node for out in n.output}
        extra = []
        self.read = {}
        self.echo = [b for b in wanted if b in self.inputs]
        for blob in wanted:
            value = blob_map.get(blob)
            if value is None or blob in self.inputs:
                continue
            if value in produced or value in graph_outputs:
                self.read[blob] = value
                if value not in graph_outputs and value not in extra:
                    extra.append(value)
        for blob, value in self.outputs.items():
            self.read.setdefault(blob, value)
        if extra:
            import onnx
            model = onnx.ModelProto.FromString(model.SerializeToString())
            from onnx import TensorProto, helper
            model.graph.output.extend(helper.make_tensor_value_info(v, TensorProto.FLOAT, None) for v in extra)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        self._names = [o.name for o in self.session.get_outputs()]

    def run(self, inputs):
        """{Caffe blob: array} for the net's outputs and every mapped blob requested."""
        feeds = {}
        for blob, value in self.inputs.items():
            if blob not in inputs:
                raise UsageError(f"no value given for input '{blob}'")
            feeds[value] = np.ascontiguousarray(inputs[blob], np.float32)
        values = dict(zip(self._names, self.session.run(self._names, feeds)))
        out = {blob: np.asarray(inputs[blob], np.float32) for blob in self.echo}
        out.update({blob: values[v] for blob, v in self.read.items() if v in values})
        return out


def run_onnx_blobs(onnx_path_or_model, inputs, blobs=None):
    """Caffe blob -> array from ONNX Runtime: the requested blobs where names map, plus the outputs.

    `inputs` maps Caffe input blob names to arrays; `blobs` limits which intermediate
    blobs are read (default: every blob in the model's map).
    """
    return OnnxRunner(onnx_path_or_model, blobs=blobs).run(inputs)
