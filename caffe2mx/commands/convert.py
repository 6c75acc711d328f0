"""Convert a Caffe deploy net (and its caffemodel) to MXNet: PREFIX-symbol.json,
PREFIX-0000.params (arg:/aux: keys) and PREFIX-namemap.json (Caffe blob -> MXNet output)."""
import sys
from pathlib import Path

from ..api import convert, optimize, read_net
from ..converter.optimize import optimized_prefix
from ..converter.errors import ModelError, UsageError
from ..converter.layers.norm import bn_reading_statement
from ..converter.model_files import check_output_prefix, output_prefix, save
from ..progress import Progress
from ._options import (add_bn_blob3, add_force, add_input_shape, add_max_memory, add_seed, add_weights, input_shapes,
                       weights_of)

NAME = "convert"
HELP = "convert a prototxt (+ caffemodel) to an MXNet symbol and params"


def add_arguments(p):
    p.add_argument("prototxt", help="deploy .prototxt (layer {} or legacy layers {})")
    add_weights(p)
    p.add_argument("-o", "--output", metavar="PREFIX",
                   help="output prefix, or a directory (existing, or ending in /) to write DIR/<prototxt name>-* "
                        "(default: out/<prototxt name>); writes PREFIX-symbol.json, PREFIX-0000.params, "
                        "PREFIX-namemap.json, creating missing directories")
    add_bn_blob3(p)
    add_seed(p)
    p.add_argument("--optimize", action="store_true",
                   help="also write the inference-optimised model as PREFIX-opt-symbol.json, -0000.params, "
                        "-namemap.json: BN/BatchNorm/Scale folded into the convolution or inner product before "
                        "them, the rest as one per-channel affine (+ReLU) each, Split/Dropout dropped; bind it "
                        "with MXNet's MKLDNN subgraph backend (the default of Module/simple_bind) so oneDNN fuses "
                        "convolution + bias + ReLU + sum")
    p.add_argument("--to-gluon", metavar="MODEL",
                   help="also load the weights into this caffe2mx.mxmodels Gluon model and save "
                        "PREFIX-gluon.params")
    add_force(p)
    add_max_memory(p)
    add_input_shape(p)


def _load_gluon(name, conv, bn_blob3):
    """The Gluon model `name` with the conversion's own weights (those of the caffemodel, or
    the seeded ones), or an error listing what does not correspond; nothing is written then."""
    from ..converter.caffemodel import LayerBlobs
    from ..mxmodels import get_model
    from ..mxmodels.caffe_bridge import CaffeBridgeError, load_caffe
    try:
        model = get_model(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    weights = {n.name: LayerBlobs(n.name, n.type, n.blobs, (False,) * len(n.blobs))
               for n in conv.net.graph.nodes if n.blobs}
    try:
        load_caffe(model, conv.net, weights, blob3_mode=bn_blob3)
    except CaffeBridgeError as exc:
        raise ModelError(f"the net does not match Gluon model '{name}': {exc}", file=conv.net.file) from None
    return model


def run(args):
    caffemodel = weights_of(args)
    prefix = output_prefix(args.output, Path(args.prototxt).stem)
    inputs = (args.prototxt, caffemodel)
    extra = ("gluon.params",) if args.to_gluon else ()
    check_output_prefix(prefix, force=args.force, inputs=inputs, extra=extra)
    if args.optimize:
        check_output_prefix(optimized_prefix(prefix), force=args.force, inputs=inputs)
    progress = Progress(quiet=args.quiet)
    seed = 0 if args.seed is None else args.seed
    net = read_net(args.prototxt, input_shapes(args))  # unweighted: its graph's notes are printed below
    conv = convert(net, caffemodel, bn_blob3=args.bn_blob3, seed=seed, progress=progress,
                   keep_net=bool(args.to_gluon or args.optimize))  # only the Gluon bridge and the optimiser read
    # the weighted Caffe graph
    writers = {}
    if args.to_gluon:
        gluon_net = _load_gluon(args.to_gluon, conv, args.bn_blob3)
        writers["gluon.params"] = gluon_net.save_parameters
    opt = optimize(conv, progress=progress) if args.optimize else None  # before any file is written
    files = save(conv, prefix, force=args.force, inputs=inputs, extra=writers)
    if opt is not None:
        saved = save(opt, optimized_prefix(prefix), force=args.force, inputs=inputs)
        files.update({f"opt-{k}": v for k, v in saved.items()})
    progress.done()
    if caffemodel is None and not args.quiet:
        print(f"note: no caffemodel given: used seeded weights (seed {seed})", file=sys.stderr)
    for note in net.graph.notes:
        print(f"note: {note}", file=sys.stderr)
    for adj in conv.name_map["adjustments"]:
        print(f"adjusted: layer '{adj['layer']}' ({adj['type']}): {adj['message']}", file=sys.stderr)
    statement = bn_reading_statement(conv.name_map)
    if statement:
        print(f"note: {statement}", file=sys.stderr)
    for w in conv.name_map.get("warnings", ()):
        print(f"warning: layer '{w['layer']}' ({w['type']}): {w['message']}", file=sys.stderr)
    if opt is not None and not args.quiet:
        print(_folding_summary(opt.name_map["optimized"]), file=sys.stderr)
    if not args.quiet:
        for f in files.values():
            print(f)
    return 0


def _folding_summary(record):
    """One line per kind of folding, naming the layers (every one is in the name map)."""
    kinds = {"weights": "folded into the weights of the layer before", "affine": "emitted as one per-channel affine",
             "identity": "dropped (identity)"}
    lines = []
    for how, text in kinds.items():
        names = [f["layer"] for f in record["foldings"] if f["how"] == how]
        if names:
            shown = ", ".join(names[:4]) + (f", ... ({len(names)} in all)" if len(names) > 4 else "")
            lines.append(f"optimized: {len(names)} layer(s) {text}: {shown}")
    return "\n".join(lines) or "optimized: nothing to fold"
