"""One `verify` run: get the converted model, the inputs and the reference, compare.

The converted model is either converted now from the prototxt (and caffemodel, or seeded
weights; the net is parsed once and shared with the reference) or loaded from a PREFIX
written by `caffe2mx convert`, whose name map says which caffemodel and BN reading it was
made with. This sits above `converter` and `verify` because it uses both (and seeding).
"""
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .converter import budget
from .converter.errors import Caffe2MXError, UsageError

from .verify import references
from .verify.inputs import load_inputs


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
    timings: dict = field(default_factory=dict)      # stage -> wall seconds
    peak_rss_mb: dict = field(default_factory=dict)  # stage -> the process's peak RSS when it ended
    warnings: list = field(default_factory=list)  # where the run departs from the model's own settings
    bn_blob3: str = "inv_std"

    @property
    def local(self):
        """--strict: Diff of the first diverging layer re-run alone in NumPy on MXNet's inputs."""
        return self.outcome.local

    @property
    def actual(self):
        """MXNet's values of the failing points kept for the report: {version: array}."""
        return {v: a["actual"] for v, a in self.outcome.arrays.items()}


def peak_rss_mb():
    """This process's peak resident set size so far, in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Clock:
    """Wall time and the peak RSS reached by the end of each stage."""

    def __init__(self, say):
        self.say, self.timings, self.rss, self._t = say, {}, {}, None

    def stage(self, name, message):
        self.say(message)
        now = time.perf_counter()
        if self._t is not None:
            self.timings[self._t[0]] = round(now - self._t[1], 3)
            self.rss[self._t[0]] = round(peak_rss_mb(), 1)
        self._t = (name, now)

    def stop(self):
        self.stage(None, "")
        self.timings.pop(None, None)
        self.rss.pop(None, None)
        return self.timings


def _converted_model(prototxt, caffemodel, model, bn_blob3, weights_seed, input_shapes, warn, clock):
    """(Conversion, LoadedNet): the model loaded from PREFIX or converted now, and the weighted
    Caffe graph the reference runs. A loaded model's own caffemodel, bn_blob3 and weight seed
    (from its name map) win over the arguments, with a warning where they differ."""
    from .api import convert
    from .converter.model_files import load
    from .converter.pipeline import load_net, read_net
    if model is None:
        if prototxt is None:
            raise UsageError("give the Caffe prototxt, or a converted model with --model PREFIX")
        mode = bn_blob3 or "inv_std"
        conv = convert(prototxt, caffemodel, bn_blob3=mode, seed=weights_seed, input_shapes=input_shapes,
                       progress=clock.say)
        return conv, conv.net, mode
    if input_shapes:
        raise UsageError(f"--model {model} was converted with its own input shapes; --input-shape goes with "
                         f"converting now (without --model)")
    conv = load(model)
    nm = conv.name_map
    if prototxt is None:
        prototxt = nm.get("prototxt")
        if not prototxt or not Path(prototxt).is_file():
            raise UsageError(f"--model {model} was converted from {prototxt or 'an unknown prototxt'}, which is "
                             f"not there; give the prototxt")
    recorded = nm.get("caffemodel")
    if caffemodel is not None and recorded is not None and Path(caffemodel).resolve() != Path(recorded).resolve():
        warn(f"--model {model} was converted from {recorded}; verifying against {caffemodel} as asked")
    elif caffemodel is None and recorded is not None:
        if not Path(recorded).is_file():
            raise UsageError(f"--model {model} was converted from {recorded}, which is no longer there; "
                             f"give the caffemodel to verify against")
        caffemodel = recorded
    model_mode = (nm.get("options") or {}).get("bn_blob3", "inv_std")
    if bn_blob3 is not None and bn_blob3 != model_mode:
        warn(f"--model {model} was converted with --bn-blob3 {model_mode}; the reference uses {bn_blob3} as asked")
    mode = bn_blob3 or model_mode
    shapes = {k: tuple(v) for k, v in (nm.get("input_shapes") or {}).items()} or None
    net = read_net(prototxt, shapes, clock.say)
    weights = None
    if caffemodel is None:
        from .seeding import seeded_weights
        seed = nm.get("seeded_weights", 0) if weights_seed is None else weights_seed
        weights = seeded_weights(net, seed=seed)
    return conv, load_net(net, caffemodel, weights=weights), mode


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


def verify(prototxt, caffemodel=None, *, model=None, reference="numpy", onnx=None, input=None, input_seed=0,
           seed=None, prep=None, rtol=None, type_rtol=None, bn_blob3=None, input_shapes=None, strict=False,
           progress=None):
    """Run the whole comparison and return a VerifyRun (its `.outcome` says pass or where it failed).

    Default: every layer judged on the reference's own inputs against its float32 tolerance,
    and the free-running drift against what float32 forces (verify/parity.py); `strict`:
    blob by blob, free running, one threshold (`rtol`, default 2e-3). `seed` is the seed of
    the seeded weights when there is no caffemodel (default: the loaded model's, else 0),
    `input_seed` that of the random input. `bn_blob3` defaults to the loaded model's
    reading, else inv_std.
    """
    from .verify.mxnet_pieces import PieceError, SymbolPieces
    from .verify.parity import ComparisonRun

    clock = _Clock(progress or (lambda m: None))
    warnings = []
    source = _reference_source(reference)
    dump = None
    if source == "dump":
        clock.stage("read_reference", f"reading {reference}")
        dump = references.read_activations(reference)

    clock.stage("convert", "loading the converted model" if model else "converting")
    conversion, net, bn_blob3 = _converted_model(prototxt, caffemodel, model, bn_blob3, seed, input_shapes,
                                                 warnings.append, clock)
    caffemodel = net.caffemodel
    budget.check(net, "verify", caffemodel=caffemodel, seeded=False)
    name_map = conversion.name_map
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
        inputs = load_inputs(input, input_shapes, seed=input_seed, prep=prep)
        input_source = input if input not in (None, "random") else f"random U(-1,1), seed {input_seed}"
    _check_inputs(inputs, input_shapes, input_source)

    if source == "numpy":
        ref = references.numpy_reference(graph)
    elif source == "dump":
        ref = dump
    else:
        clock.stage("reference", "computing the onnxruntime reference")
        ref = references.onnx_reference(conversion, inputs, onnx)
    try:
        pieces = SymbolPieces(conversion.symbol, conversion.arg_params, conversion.aux_params, name_map)
    except PieceError as exc:
        raise ConvertedModelFailed(f"MXNet could not run the converted model: {exc}") from None
    run = ComparisonRun(net, pieces, name_map, ref, inputs, bn_blob3=bn_blob3, strict=strict, rtol=rtol,
                        type_rtol=type_rtol, progress=clock.say)
    if not run.units:
        raise UsageError(f"the reference ({reference}) has no blob names in common with the net "
                         f"(it has e.g. {', '.join(list(ref.blobs)[:5]) or 'nothing'})")
    clock.stage("compare", "running MXNet layer by layer against the reference")
    outcome = run.run()
    timings = clock.stop()
    return VerifyRun(outcome=outcome, graph=graph, shapes=shapes, name_map=name_map, symbol=conversion.symbol,
                     reference=ref, inputs=inputs, input_source=str(input_source), prototxt=str(net.file),
                     caffemodel=str(caffemodel) if caffemodel else None, model_prefix=model, timings=timings,
                     peak_rss_mb=dict(clock.rss), warnings=warnings, bn_blob3=bn_blob3)
