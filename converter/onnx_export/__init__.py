"""ONNX export of converted nets, and running the result in ONNX Runtime blob by blob.

Design: the exporter translates the converted MXNet symbol op by op (one small function
per MXNet op, registered by op name like the layer handlers), rather than calling
MXNet 1.9.1's `mx.onnx.export_model`. The symbol is the one thing both entry points have
(a prototxt conversion and a saved PREFIX-symbol.json), and translating it makes ONNX
compute exactly what the verified MXNet model computes. The emitter uses a small, closed
set of MXNet ops, and the name map ties every MXNet node to its Caffe layer, so ONNX
node names are Caffe layer names (`layer`, or `layer:helper` for a layer's extra nodes;
the exact layer -> nodes map is in the metadata as `caffe2mx.layers`).

mx2onnx was tried on all 103 Caffe golden nets first. Conv, Deconvolution, BatchNorm
(fix_gamma=False), BilinearResize2D(align_corners), MAX pooling with the `full`
convention, Eltwise and the scalar ops came out right, but it gets AVE pooling with the
`full` convention wrong (divisor; errors up to 0.75), fails on PReLU with a per-channel
slope, on FullyConnected over a 4-D input, and on broadcast_maximum (Eltwise MAX). Its
whole-graph output is also unfit here: weights are graph inputs, the opset is whatever
the installed onnx package defaults to, and nodes are unnamed. Its correct per-op
mappings are one-liners (Conv, Relu, Sum ...), so mixing its private per-op converters
into our graph would buy nothing but a dependency on its internals; every op goes
through our own translators.

Caffe specifics and how they reach ONNX:
- ceil-mode pooling with Caffe's pad correction: the emitter already chose MXNet
  `full`/`valid`/explicit-pad forms equal to Caffe; `full` is written with explicit end
  padding (no `ceil_mode`, whose last-window rule differs between runtimes) and, for
  AVE, a constant divisor-correction map.
- the fork's BN is folded by the emitter into a BatchNorm (fix_gamma=False): exported as
  BatchNormalization with gamma as given.
- Interp: Resize(mode=linear, coordinate_transformation_mode=align_corners) to the fixed
  size (opset >= 18: `axes=[2, 3]` and constant sizes; 13..17: batch and channels read
  from the input's shape, spatial sizes constant).
- Eltwise coefficients: Mul by a scalar before Sum.
- box_nms (DetectionOutput, the proposal layer): NonMaxSuppression on ranks, not scores,
  with degenerate boxes zeroed and one class per distinct id (ops_detection.py says why).
"""
import json
from pathlib import Path

from ..errors import ModelError, UsageError
from .exporter import BATCH_DIM, DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, check, symbol_to_onnx
from .registry import supported_ops
from .runtime import OnnxRunner, model_blob_map, run_onnx_blobs

def simplify(model):
    """Optional graph clean-up by onnxsim (preferred) or onnxoptimizer; names of inputs/outputs kept."""
    try:
        import onnxsim
    except ImportError:
        onnxsim = None
    if onnxsim is not None:
        simplified, ok = onnxsim.simplify(model)
        if not ok:
            raise ModelError("onnxsim could not validate the simplified model")
        return simplified, "onnxsim"
    try:
        import onnxoptimizer
    except ImportError:
        raise UsageError("--simplify needs onnxsim or onnxoptimizer, and neither is installed: "
                         "pip install onnxoptimizer") from None
    passes = [p for p in onnxoptimizer.get_fuse_and_elimination_passes() if p != "fuse_pad_into_pool"]
    return onnxoptimizer.optimize(model, passes), "onnxoptimizer"


def _prune_blob_map(model):
    """After simplification, keep only blob entries whose values still exist."""
    meta = {p.key: p.value for p in model.metadata_props}
    if "caffe2mx.blobs" not in meta:
        return
    present = {i.name for i in model.graph.input} | {o.name for o in model.graph.output}
    present |= {out for n in model.graph.node for out in n.output}
    blobs = {k: v for k, v in json.loads(meta["caffe2mx.blobs"]).items() if v in present}
    for p in model.metadata_props:
        if p.key == "caffe2mx.blobs":
            p.value = json.dumps(blobs)


def conversion_to_onnx(conv, *, opset=DEFAULT_OPSET, dynamic_batch=True, do_simplify=False, run_check=True):
    """ModelProto for a caffe2mx Conversion (or anything with symbol/arg_params/aux_params/name_map)."""
    model = symbol_to_onnx(conv.symbol, conv.arg_params, conv.aux_params, conv.name_map, opset=opset,
                           dynamic_batch=dynamic_batch)
    if do_simplify:
        model, tool = simplify(model)
        model.metadata_props.add(key="caffe2mx.simplified_by", value=tool)
        _prune_blob_map(model)
    if run_check:
        check(model)
    return model


def check_output(path, *, force=False, inputs=()):
    """Fail before any work if the .onnx cannot be written: a directory, an input of the run,
    or an existing file without `force`."""
    from ..staging import check_targets
    check_targets([path], force=force, inputs=inputs)


def save_model(model, path, *, force=False, inputs=()):
    """Write the .onnx through a staged file moved into place: nothing is left behind when
    anything fails or the run is interrupted; an existing file is replaced only with `force`."""
    from ..staging import Staging
    path = Path(path)
    if model.ByteSize() >= 2 ** 31 - 1:
        raise ModelError("the model is larger than 2 GB, which a single .onnx protobuf cannot hold")
    with Staging([path], force=force, inputs=inputs) as st:
        with open(st.path(path), "wb") as f:
            f.write(model.SerializeToString())
        st.commit()
    return str(path)


def export_conversion(conv, output=None, *, opset=DEFAULT_OPSET, dynamic_batch=True, simplify=False,
                      progress=None, force=False):
    """ONNX ModelProto of a Conversion (converted now, or `model_files.load`ed); also written
    to `output` when given, atomically."""
    say = progress or (lambda msg: None)
    say(f"translating to ONNX (opset {opset})")
    model = conversion_to_onnx(conv, opset=opset, dynamic_batch=dynamic_batch, do_simplify=simplify)
    if output is not None:
        say(f"writing {output}")
        save_model(model, output, force=force)
    return model


__all__ = ["export_conversion", "conversion_to_onnx", "symbol_to_onnx", "save_model", "check_output", "simplify",
           "check", "run_onnx_blobs", "OnnxRunner", "model_blob_map", "supported_ops", "DEFAULT_OPSET",
           "MIN_OPSET", "MAX_OPSET", "BATCH_DIM"]
