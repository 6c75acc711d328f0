"""int8 models by MXNet's own post-training quantization (mx.contrib.quantization, oneDNN).

`quantize_conversion` takes a converted model (best the optimised one: its BN is folded
and its remaining per-channel affines are depthwise convolutions, so whole residual
chains stay in int8) and calibration inputs, and returns the int8 Conversion: MXNet's
`quantize_model_mkldnn` fuses convolution + ReLU + sum, quantizes weights per channel or
per tensor, and sets every requantization range from the calibration set (`entropy`:
thresholds minimising the KL divergence of each layer's output histogram, `naive`: the
min/max seen). Written as PREFIX-int8-*; its name map keeps the inputs and outputs (its
internal nodes are MXNet's fused int8 subgraphs, not Caffe layers) and records how it
was made under `quantized`.

Why MXNet's quantizer and not our own: it is what MXNet's int8 oneDNN kernels expect
(calibrated `_sg_mkldnn_conv` nodes with fused requantization), and it is maintained
with them; we only choose what to feed it and measure what comes out.
"""
import json

import numpy as np

from .emit import _mx
from .errors import UsageError
from .model_files import Conversion

INT8_SUFFIX = "-int8"
CALIB_MODES = ("entropy", "naive")
GRANULARITIES = ("channel-wise", "tensor-wise")
#: MXNet 1.9.1's entropy thresholds are symmetric, so a ReLU output it had made uint8 then
#: gets a negative minimum and the int8 kernels refuse it: with entropy, MXNet picks int8 or
#: uint8 per tensor itself ("auto")
QUANTIZED_DTYPE = {"naive": "int8", "entropy": "auto"}
#: operator types left in float by default:
#: - MXNet's int8 element-wise add/multiply (what is left of them once oneDNN has fused
#:   residual sums into convolutions: the attention masks' sums and products) were slower than
#:   float and less accurate on Attention-56 (single thread, batch 8: 1147 ms CPU all
#:   quantized, 1077 ms with these in float);
#: - MXNet 1.9.1's int8 FullyConnected is far less accurate than its int8 convolution on an
#:   AVX2 CPU: 4-8% RMS off float on a 512-long product where a convolution stays within
#:   2%, and 14-25% with flatten=False, which is how Interp's resize matrices run
#:   (`benchmarks/int8_ops.py`). Quantized, the six resizes of Attention-56 alone moved its
#:   log-probabilities as much as quantizing the whole net; the classifier and the resizes
#:   are a small share of the time.
FLOAT_OPS = ("elemwise_add", "elemwise_mul", "FullyConnected")


def int8_prefix(prefix):
    return f"{prefix}{INT8_SUFFIX}"


def _input(conv):
    """(Caffe input blob, MXNet variable, shape) of a single-input model."""
    used = conv.input_names()
    inputs = [(b, v) for b, v in conv.name_map["inputs"].items() if v in used]
    if len(inputs) != 1:
        raise UsageError(f"quantization needs a net with one input; this one reads {len(inputs)}: "
                         f"{', '.join(b for b, _ in inputs)}")
    blob, var = inputs[0]
    return blob, var, tuple(conv.name_map["input_shapes"][blob])


def _nodes(symbol):
    """The symbol's graph nodes, as its JSON lists them (operators and variables)."""
    return json.loads(symbol.tojson())["nodes"]


def excluded_nodes(conv, layers):
    """MXNet op names of the Caffe `layers` to keep in float: every operator a layer
    emitted (an Interp is four), not only its main one."""
    ops = {n["name"] for n in _nodes(conv.symbol) if n["op"] != "null"}
    out = []
    table = conv.name_map.get("layers") or {}
    for layer in layers:
        entry = table.get(layer)
        if entry is None:
            raise UsageError(f"--exclude {layer}: no such layer in the model's name map")
        out += [n for n in entry.get("nodes") or () if n in ops]
    return out


def nodes_of_types(symbol, types):
    """Names of the operators of these types. MXNet's own `excluded_op_names` misses some:
    its oneDNN pass has already turned FullyConnected into _sg_mkldnn_fully_connected when
    it looks, while exclusion by name survives that rewrite."""
    return [n["name"] for n in _nodes(symbol) if n["op"] in types]


def unsuffixed_weight_nodes(symbol):
    """Convolution / FullyConnected nodes whose weight parameter is not named `*weight` (the
    Interp resize matrices, `resize_w`/`resize_h`): MXNet 1.9.1's tensor-wise path quantizes
    parameters it finds by that suffix and leaves these without a value, so they stay float."""
    nodes = _nodes(symbol)
    out = []
    for node in nodes:
        if node["op"] in ("Convolution", "FullyConnected") and len(node["inputs"]) > 1:
            weight = nodes[node["inputs"][1][0]]
            if weight["op"] == "null" and not weight["name"].endswith("weight"):
                out.append(node["name"])
    return out


def quantize_conversion(conv, calib, *, calib_mode="naive", granularity="channel-wise", exclude=(),
                        float_ops=FLOAT_OPS, batch_size=8, logger=None):
    """The int8 Conversion of `conv`, calibrated on `calib` (N x C x H x W float32)."""
    if calib_mode not in CALIB_MODES:
        raise UsageError(f"calibration mode must be one of {', '.join(CALIB_MODES)}, not {calib_mode!r}")
    if granularity not in GRANULARITIES:
        raise UsageError(f"granularity must be one of {', '.join(GRANULARITIES)}, not {granularity!r}")
    if calib_mode == "entropy":
        try:
            import scipy.stats  # noqa: F401  (MXNet's KL threshold search imports it)
        except ImportError:
            raise UsageError("--calib-mode entropy needs scipy: pip install 'caffe2mx[int8]' "
                             "(or use --calib-mode naive)") from None
    mx = _mx()
    from mxnet.contrib import quantization
    if calib_mode == "entropy" and quantization.stats is None:  # scipy was hidden while MXNet loaded
        import scipy.stats
        quantization.stats = scipy.stats
    blob, var, shape = _input(conv)
    calib = np.asarray(calib, np.float32)
    if calib.ndim != len(shape) or tuple(calib.shape[1:]) != tuple(shape[1:]):
        raise UsageError(f"calibration inputs have shape {list(calib.shape)}, the net takes N x {list(shape[1:])}")
    batch = max(1, min(batch_size, len(calib)))
    data = mx.io.NDArrayIter(calib, batch_size=batch, data_name=var, last_batch_handle="pad")
    qsym, qargs, qauxs = quantization.quantize_model_mkldnn(
        conv.symbol, conv.arg_params, conv.aux_params, data_names=(var,), label_names=(), ctx=mx.cpu(),
        excluded_sym_names=excluded_nodes(conv, exclude) + nodes_of_types(conv.symbol, float_ops) + (
            unsuffixed_weight_nodes(conv.symbol) if granularity == "tensor-wise" else []),
        excluded_op_names=list(float_ops),
        calib_mode=calib_mode, calib_data=data,
        num_calib_examples=len(calib), quantized_dtype=QUANTIZED_DTYPE[calib_mode], quantize_mode="smart",
        quantize_granularity=granularity, logger=logger)
    nm = conv.name_map
    outputs = dict(zip(nm["outputs"], qsym.list_outputs()))
    name_map = {key: nm[key] for key in ("format", "net", "prototxt", "inputs", "input_shapes", "options",
                                         "caffemodel", "seeded_weights") if key in nm}
    name_map.update({
        "outputs": outputs, "blobs": {**{b: v for b, v in nm["inputs"].items()}, **outputs}, "versions": {},
        "layers": {}, "nodes": {}, "adjustments": [],
        "quantized": {"by": "mxnet.contrib.quantization.quantize_model_mkldnn", "dtype": QUANTIZED_DTYPE[calib_mode],
                      "calib_mode": calib_mode, "granularity": granularity, "calibration_inputs": int(len(calib)),
                      "excluded_layers": list(exclude), "float_ops": list(float_ops),
                      "from_optimized": "optimized" in nm,
                      "bind": "as saved (already fused for oneDNN; do not apply a subgraph backend again)"},
    })
    return Conversion(symbol=qsym, arg_params=qargs, aux_params=qauxs, name_map=name_map, net=conv.net)


def predict(conv, x, batch_size=8):
    """The model's first output for every row of `x`, run `batch_size` at a time (the last
    batch padded), as one float array (N, ...)."""
    from .optimize import bind_inference
    _, var, _ = _input(conv)
    exe = bind_inference(conv, batch_size)

    def run(chunk):
        exe.arg_dict[var][:] = chunk
        return exe.forward(is_train=False)[0].asnumpy()
    return in_batches(run, np.asarray(x, np.float32), batch_size)


def in_batches(run, x, batch):
    """run(chunk) over `x` in chunks of `batch` rows, the last one padded with copies of its
    final row (a bound executor takes one batch size), the padding's outputs dropped."""
    outs = []
    for i in range(0, len(x), batch):
        chunk = x[i:i + batch]
        n = len(chunk)
        if n < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - n, axis=0)])
        outs.append(run(chunk)[:n])
    return np.concatenate(outs)


def rounded_to_int8(x, calib):
    """`x` rounded to the symmetric int8 grid that `calib`'s range gives the net's input:
    the perturbation every int8 model applies before its first layer."""
    limit = float(np.abs(np.asarray(calib, np.float32)).max()) or 1.0
    step = limit / 127.0
    return (np.clip(np.round(np.asarray(x, np.float32) / step), -127, 127) * step).astype(np.float32)


def agreement(reference, candidate):
    """Top-1 agreement and the largest absolute output difference of two (N, classes, ...)
    outputs (probabilities when the net ends in a softmax), per input row."""
    ref = np.asarray(reference, np.float64).reshape(len(reference), -1)
    got = np.asarray(candidate, np.float64).reshape(len(candidate), -1)
    return {"inputs": int(len(ref)), "top1_agreement": float(np.mean(ref.argmax(1) == got.argmax(1))),
            "max_prob_diff": float(np.abs(ref - got).max())}
