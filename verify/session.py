"""One `verify` run: get the converted model, the inputs and the reference, compare.

The converted model is either converted now from the prototxt (and caffemodel, or seeded
weights) or loaded from a PREFIX written by `caffe2mx convert`; the Caffe graph with its
weights is always rebuilt from the prototxt, because the reference and the comparison
order need Caffe's layers, not MXNet's.
"""
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace
from pathlib import Path

import numpy as np

from caffe2mx.converter.errors import Caffe2MXError, UsageError

from . import references
from .inputs import load_inputs
from .local import local_check
from .parity import run_parity, versions_to_run, version_name_map


class ConvertedModelFailed(Caffe2MXError):
    """The converted model does not run at all: a parity failure (exit code 1), not bad input."""

    exit_code = 1


@dataclass
class VerifyRun:
    outcome: object
    graph: object
    shapes: dict
    name_map: dict
    symbol: object
    reference: object
    inputs: dict
    input_source: str
    prototxt: str
    caffemodel: str = None
    model_prefix: str = None
    timings: dict = field(default_factory=dict)
    actual: dict = field(default_factory=dict)  # version id -> MXNet value
    local: object = None  # Diff of the first diverging layer run alone on MXNet's inputs


class _Clock:
    def __init__(self, say):
        self.say, self.timings, self._t = say, {}, None

    def stage(self, name, message):
        self.say(message)
        now = time.perf_counter()
        if self._t is not None:
            self.timings[self._t[0]] = round(now - self._t[1], 3)
        self._t = (name, now)

    def stop(self):
        self.stage(None, "")
        self.timings.pop(None, None)
        return self.timings


def _load_model(prefix):
    from .mxnet_run import load_converted
    files = [Path(f"{prefix}-{s}") for s in ("symbol.json", "0000.params", "namemap.json")]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise UsageError(f"--model {prefix}: missing {', '.join(missing)} (write them with `caffe2mx convert`)")
    symbol, args, auxs = load_converted(prefix)
    try:
        name_map = json.loads(files[2].read_text())
    except ValueError as exc:
        raise UsageError(f"{files[2]}: not JSON ({exc})") from None
    return symbol, args, auxs, name_map


def _graph_with_weights(prototxt, caffemodel, seed, input_shapes):
    from caffe2mx.converter.pipeline import load_net
    weights = None
    if caffemodel is None:
        from caffe2mx.converter.init_weights import seeded_weights
        weights = seeded_weights(prototxt, seed=seed, input_shapes=input_shapes)
    return load_net(prototxt, caffemodel, weights=weights, input_shapes=input_shapes)


def _reference_source(reference):
    if reference in ("numpy", "onnxruntime"):
        return reference
    if str(reference).endswith(".npz"):
        return "dump"
    raise UsageError(f"--reference takes numpy, onnxruntime or a .npz of Caffe activations, not {reference!r}")


def _check_inputs(inputs, input_shapes, source):
    for name, shape in input_shapes.items():
        got = tuple(np.shape(inputs[name]))
        if got != tuple(shape):
            raise UsageError(f"{source}: input '{name}' has shape {list(got)}, the converted model takes "
                             f"{list(shape)} (convert with matching input shapes)")


def _run_mxnet(symbol, args, auxs, name_map, inputs, versions):
    from .mxnet_run import run_blobs
    try:
        return run_blobs(symbol, args, auxs, version_name_map(name_map, versions), inputs)
    except Exception as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise ConvertedModelFailed(f"MXNet could not run the converted model: "
                                   f"{lines[-1] if lines else type(exc).__name__}") from None


def verify(prototxt, caffemodel=None, *, model=None, reference="numpy", onnx=None, input=None, seed=0,
           weights_seed=None, prep=None, rtol=None, type_rtol=None, bn_blob3="inv_std", input_shapes=None,
           progress=None):
    """Run the whole comparison and return a VerifyRun (its `.outcome` says pass or where it failed)."""
    clock = _Clock(progress or (lambda m: None))
    source = _reference_source(reference)
    dump = None
    if source == "dump":
        clock.stage("read_reference", f"reading {reference}")
        dump = references.read_activations(reference)

    clock.stage("convert", "loading the converted model" if model else "converting")
    if model is not None:
        if input_shapes:
            raise UsageError(f"--model {model} was converted with its own input shapes; --input-shape goes with "
                             f"converting now (without --model)")
        symbol, args, auxs, name_map = _load_model(model)
        wseed = name_map.get("seeded_weights", 0) if weights_seed is None else weights_seed
        shapes_in = {k: tuple(v) for k, v in name_map.get("input_shapes", {}).items()} or None
        net = _graph_with_weights(prototxt, caffemodel, wseed, shapes_in)
        conversion = None
    else:
        from caffe2mx.api import convert
        conversion = convert(prototxt, caffemodel, bn_blob3=bn_blob3, seed=weights_seed, input_shapes=input_shapes)
        symbol, args, auxs, name_map = (conversion.symbol, conversion.arg_params, conversion.aux_params,
                                        conversion.name_map)
        net = conversion.net
    graph, shapes = net.graph, net.shapes
    input_shapes = {graph.caffe_blob(b): tuple(shapes[b]) for b in graph.inputs}

    clock.stage("inputs", "preparing inputs")
    if dump is not None and input is None:
        rewritten = {name for name in input_shapes if graph.final_version.get(name, name) != name}
        inputs = references.inputs_from_dump(dump, input_shapes, rewritten)
        if inputs is None:
            raise UsageError(f"{reference}: holds no usable input for {', '.join(input_shapes)}; give it with --input")
        input_source = f"stored in {reference}"
    else:
        inputs = load_inputs(input, input_shapes, seed=seed, prep=prep)
        input_source = input if input not in (None, "random") else f"random U(-1,1), seed {seed}"
    _check_inputs(inputs, input_shapes, input_source)

    if source == "numpy":
        clock.stage("reference+mxnet", "computing the NumPy reference and running MXNet")
        produced = set(graph.inputs) | {t for n in graph.nodes for t in n.tops}
        versions = [v for v in name_map.get("versions", {}) if v in produced]
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(_run_mxnet, symbol, args, auxs, name_map, inputs, versions)
            ref = references.numpy_reference(graph, inputs, bn_blob3=bn_blob3)
            actual = pending.result()
    else:
        clock.stage("reference", f"computing the {source} reference")
        if source == "dump":
            ref = dump
        else:
            converted = SimpleNamespace(symbol=symbol, arg_params=args, aux_params=auxs, name_map=name_map)
            ref = references.onnx_reference(converted, inputs, onnx)
        clock.stage("mxnet", "running MXNet")
        versions = versions_to_run(graph, name_map, ref)
        if not versions:
            raise UsageError(f"the reference ({reference}) has no blob names in common with the net "
                             f"(it has e.g. {', '.join(list(ref.blobs)[:5]) or 'nothing'})")
        actual = _run_mxnet(symbol, args, auxs, name_map, inputs, versions)

    clock.stage("compare", "comparing")
    outcome = run_parity(graph, name_map, actual, ref, rtol=rtol, type_rtol=type_rtol)
    local = None
    if outcome.first is not None and len(outcome.first.suspects) == 1:
        local = local_check(graph, outcome.first.suspects[0], actual, bn_blob3=bn_blob3)
    timings = clock.stop()
    return VerifyRun(outcome=outcome, graph=graph, shapes=shapes, name_map=name_map, symbol=symbol, reference=ref,
                     inputs=inputs, input_source=str(input_source), prototxt=str(prototxt),
                     caffemodel=str(caffemodel) if caffemodel else None, model_prefix=model, timings=timings,
                     actual=actual, local=local)
