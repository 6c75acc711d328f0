"""Check every layer of a converted model against reference activations and name the first
layer whose own conversion is wrong.

Each layer runs in MXNet on the reference's own inputs and must match within what float32
arithmetic allows that layer; the whole net's free-running drift must stay within what
float32 forces (`--strict`: the earlier blob-by-blob end-to-end comparison). The reference
is a Caffe dump (.npz from the script `caffe2mx dump-script` prints), the built-in NumPy
reference of Caffe's semantics, or ONNX Runtime on the exported model.
Exit code 0: every blob passes; 1: parity failed; 2: bad input.
"""
import sys

from caffe2mx.converter.errors import UsageError
from caffe2mx.progress import Progress
from caffe2mx.verify.metrics import CHAIN_RTOL

from ._options import (add_bn_blob3, add_input_shape, add_max_memory, add_model, add_seed, add_weights,
                       input_shapes, weights_of)

NAME = "verify"
HELP = "layer-by-layer parity of the converted model against Caffe activations or a reference"


def add_arguments(p):
    from caffe2mx.verify.inputs import PRESETS
    p.add_argument("prototxt", nargs="?", help="the Caffe deploy net (optional with --model: the one it was "
                   "converted from)")
    add_weights(p)
    p.add_argument("--reference", default="numpy", metavar="SRC",
                   help="numpy (built-in NumPy Caffe, default), onnxruntime, or ACTS.npz dumped from Caffe")
    add_model(p, "a converted model (PREFIX-symbol.json, -0000.params, -namemap.json) instead of converting "
              "now; its caffemodel (or weight seed) and --bn-blob3 are taken from its name map")
    p.add_argument("--onnx", metavar="FILE", help="with --reference onnxruntime: this .onnx instead of exporting now")
    p.add_argument("--input", metavar="FILE", help="image, .npy or .npz (by input name); default: the input stored "
                   "in the reference .npz, else seeded random U(-1,1)")
    add_seed(p)
    p.add_argument("--input-seed", type=int, default=0, help="seed of the random input (default 0)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="image preprocessing: " + "; ".join(f"{k}: {v.description}" for k, v in PRESETS.items())
                   + " (default imagenet)")
    p.add_argument("--mean", help="per-channel mean on the 0-255 scale, in the net's channel order, e.g. 104,117,123")
    p.add_argument("--scale", type=float, help="multiplier applied after the mean")
    p.add_argument("--channel-order", choices=["bgr", "rgb"])
    p.add_argument("--rtol", type=float, default=None,
                   help="threshold on each layer's own max relative error, fed the reference's inputs (default: "
                   "per layer, from float32 arithmetic: 2^-24 x a per-type constant x sqrt(reduction length)), also "
                   "a floor under the end-to-end drift bound; with --strict, the threshold on each blob end to end "
                   f"(default {CHAIN_RTOL:g}). An element's relative error is |a-b| / max(|b|, rms(b)), the floor "
                   "being the reference blob's RMS")
    p.add_argument("--type-rtol", action="append", default=[], metavar="TYPE=RTOL",
                   help="threshold for one Caffe layer type, e.g. Softmax=1e-3 (repeatable)")
    p.add_argument("--strict", action="store_true",
                   help="the earlier mode: every blob of the free-running MXNet net against the reference with one "
                   "threshold (--rtol), no per-layer verdict")
    add_bn_blob3(p, default=None)
    p.add_argument("--all", action="store_true", help="list every blob, not only the failures")
    p.add_argument("--report", metavar="DIR", help="write an HTML report (and report.json) into DIR")
    add_max_memory(p)
    add_input_shape(p)


def _type_rtol(items):
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise UsageError(f"--type-rtol takes TYPE=RTOL, not {item!r}") from None
        if not sep or not key.strip():
            raise UsageError(f"--type-rtol takes TYPE=RTOL, not {item!r}")
    return out


def run(args):
    from caffe2mx.verify.inputs import preprocess
    from caffe2mx.verification import verify
    from caffe2mx.verify.table import render

    prep = preprocess(args.preset, args.mean, args.scale, args.channel_order)
    progress = Progress(args.quiet)
    try:
        result = verify(args.prototxt, weights_of(args), model=args.model, reference=args.reference, onnx=args.onnx,
                        input=args.input, input_seed=args.input_seed, seed=args.seed, prep=prep, rtol=args.rtol,
                        type_rtol=_type_rtol(args.type_rtol), bn_blob3=args.bn_blob3, strict=args.strict,
                        input_shapes=input_shapes(args), progress=progress)
        if args.report:
            from caffe2mx.verify.report import write_report
            progress("writing the report")
            paths = write_report(result, args.report)
    finally:
        progress.done()
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(render(result, show_all=args.all))
    if args.report:
        print(f"report: {paths['html']}")
    return 0 if result.outcome.passed else 1
