"""int8 model of a converted one by MXNet's own quantization (oneDNN), calibrated on the
user's inputs, written only if it agrees with the float model well enough.

    caffe2mx quantize PREFIX --calib DIR|IMAGES.npy|random:N [--calib-mode entropy|naive]

Reports top-1 agreement and the largest output (probability) difference against the float
model on the calibration inputs (or on --eval inputs), and refuses to write PREFIX-int8-*
when the agreement is below --min-agreement (exit code 1, nothing written).
"""
import sys
from pathlib import Path

import numpy as np

from caffe2mx.converter.errors import Caffe2MXError, UsageError

from ._options import add_force, add_model

NAME = "quantize"
HELP = "int8 model by MXNet's quantization (oneDNN), calibrated on your inputs, checked against the float model"


class AgreementTooLow(Caffe2MXError):
    """The int8 model disagrees with the float model more than allowed: exit code 1."""

    exit_code = 1


def add_arguments(p):
    from caffe2mx.converter.optimize_int8 import CALIB_MODES, GRANULARITIES
    from caffe2mx.verify.inputs import PRESETS
    p.add_argument("prefix", nargs="?", metavar="PREFIX",
                   help="a converted model (PREFIX-symbol.json ...); the optimised one (PREFIX-opt, from "
                        "`convert --optimize`) quantizes best")
    add_model(p, "the converted model, same as PREFIX")
    p.add_argument("--calib", required=True, metavar="SRC",
                   help="calibration inputs: a directory of images, a .npy of N x C x H x W (or C x H x W) "
                        "preprocessed inputs, or random:N (N seeded U(-1,1) inputs, --input-seed)")
    p.add_argument("--calib-mode", choices=CALIB_MODES, default="naive",
                   help="naive: each layer's range is the min/max seen on the calibration set (default); "
                        "entropy: the threshold minimising the KL divergence of its histogram (slower)")
    p.add_argument("--granularity", choices=GRANULARITIES, default="channel-wise",
                   help="weight scales per output channel (default) or one per tensor")
    p.add_argument("--eval", metavar="SRC", help="measure agreement on these inputs instead (same forms as --calib)")
    p.add_argument("--min-agreement", type=float, default=0.99,
                   help="smallest top-1 agreement with the float model to accept (default 0.99)")
    p.add_argument("--exclude", action="append", default=[], metavar="LAYER",
                   help="Caffe layer to keep in float (repeatable)")
    p.add_argument("--batch", type=int, default=8, help="batch size for calibration and evaluation (default 8)")
    p.add_argument("--input-seed", type=int, default=0, help="seed of random:N inputs (default 0)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None, help="image preprocessing (default imagenet)")
    p.add_argument("--mean", help="per-channel mean on the 0-255 scale, e.g. 104,117,123")
    p.add_argument("--scale", type=float, help="multiplier applied after the mean")
    p.add_argument("--channel-order", choices=["bgr", "rgb"])
    p.add_argument("-o", "--output", metavar="PREFIX", help="output prefix (default: PREFIX-int8)")
    add_force(p)


def read_inputs(source, shape, *, seed=0, prep=None):
    """N x C x H x W float32 from a directory of images, a .npy, or random:N."""
    from caffe2mx.verify.inputs import IMAGE_SUFFIXES, image_inputs, preprocess
    text = str(source)
    if text.startswith("random:"):
        try:
            n = int(text.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise UsageError(f"{source}: random:N needs a positive count N")
        return np.random.default_rng(seed).uniform(-1, 1, (n,) + tuple(shape[1:])).astype(np.float32)
    path = Path(source)
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UsageError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this directory")
        one = (1,) + tuple(shape[1:])
        return np.concatenate([next(iter(image_inputs(f, {"x": one}, prep or preprocess()).values())) for f in files])
    if path.suffix.lower() == ".npy" and path.is_file():
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: cannot read as a NumPy file ({exc})") from None
        if arr.ndim == len(shape) - 1:
            arr = arr[None]
        if arr.ndim != len(shape) or tuple(arr.shape[1:]) != tuple(shape[1:]) or not np.issubdtype(arr.dtype, np.number):
            raise UsageError(f"{path}: holds {arr.dtype} {list(arr.shape)}; the net takes N x {list(shape[1:])}")
        return arr.astype(np.float32)
    raise UsageError(f"{source}: not a directory of images, a .npy file or random:N")


def _floor_hint(floor, wanted):
    """Why the agreement is low, where the float model itself is to blame."""
    text = (f". The float model itself keeps its top-1 on {100 * floor:.1f}% of these inputs once they are "
            f"rounded to int8 (the first thing an int8 model does)")
    if floor < wanted:
        return (text + ": its predictions on them are too unstable for top-1 agreement to judge int8 by "
                "(seeded weights or random inputs?); calibrate and evaluate on real images with trained weights")
    return text + ", so the loss is the int8 layers': try --calib-mode entropy, more --calib inputs, or --exclude"


def run(args):
    from caffe2mx.converter.model_files import check_output_prefix, files_of, load, save
    from caffe2mx.converter.optimize_int8 import (_input, agreement, int8_prefix, predict, quantize_conversion,
                                                  rounded_to_int8)
    from caffe2mx.progress import Progress
    from caffe2mx.verify.inputs import preprocess

    if args.prefix and args.model and args.prefix != args.model:
        raise UsageError("give the model once (PREFIX or --model)")
    prefix = args.prefix or args.model
    if not prefix:
        raise UsageError("give the converted model: caffe2mx quantize PREFIX --calib SRC")
    if not 0.0 <= args.min_agreement <= 1.0:
        raise UsageError(f"--min-agreement is a fraction in [0, 1], not {args.min_agreement}")
    if args.batch < 1:
        raise UsageError("--batch must be at least 1")
    out = args.output or int8_prefix(prefix)
    inputs = list(files_of(Path(prefix)).values()) + [src for src in (args.calib, args.eval)
                                                       if src and not src.startswith("random:")]
    check_output_prefix(out, force=args.force, inputs=inputs)
    progress = Progress(quiet=args.quiet)
    conv = load(prefix)
    if "quantized" in conv.name_map:
        raise UsageError(f"{prefix}: is already an int8 model")
    _, _, shape = _input(conv)
    prep = preprocess(args.preset, args.mean, args.scale, args.channel_order)
    calib = read_inputs(args.calib, shape, seed=args.input_seed, prep=prep)
    evaluation = calib if args.eval is None else read_inputs(args.eval, shape, seed=args.input_seed + 1, prep=prep)
    progress(f"calibrating on {len(calib)} inputs ({args.calib_mode})")
    qconv = quantize_conversion(conv, calib, calib_mode=args.calib_mode, granularity=args.granularity,
                                exclude=args.exclude, batch_size=args.batch)
    progress(f"comparing int8 with float on {len(evaluation)} inputs")
    reference = predict(conv, evaluation, args.batch)
    stats = agreement(reference, predict(qconv, evaluation, args.batch))
    qconv.name_map["quantized"]["agreement"] = dict(stats, on="--eval" if args.eval else "--calib")
    line = (f"int8 vs float on {stats['inputs']} inputs: top-1 agreement {100 * stats['top1_agreement']:.1f}%, "
            f"max output difference {stats['max_prob_diff']:.3g}")
    if stats["top1_agreement"] < args.min_agreement:
        progress("the float model on the same inputs rounded to int8")
        floor = agreement(reference, predict(conv, rounded_to_int8(evaluation, calib), args.batch))
        progress.done()
        raise AgreementTooLow(f"{line}: below --min-agreement {100 * args.min_agreement:g}%; nothing written"
                              + _floor_hint(floor["top1_agreement"], args.min_agreement))
    progress.done()
    files = save(qconv, out, force=args.force, inputs=inputs)
    print(line, file=sys.stderr)
    if not args.quiet:
        for f in files.values():
            print(f)
    return 0
