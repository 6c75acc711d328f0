"""Draw a Caffe net (layers labelled with type and output shape) and its converted MXNet symbol.

Writes OUT/caffe.svg and OUT/mxnet.svg (and the .dot sources). Nets too large for one
readable picture are grouped by layer-name prefix: a group (an attention module, say)
is one node linking to its own page under OUT/caffe/ or OUT/mxnet/.
Needs graphviz's `dot` program (Debian/Ubuntu: apt-get install graphviz).
"""
from pathlib import Path

from caffe2mx.converter.errors import UsageError
from caffe2mx.progress import Progress

from ._options import add_input_shape, add_max_memory, add_model, input_shapes

NAME = "visualize"
HELP = "render the Caffe graph and the converted MXNet symbol (graphviz SVG)"


def add_arguments(p):
    from caffe2mx.verify.graphs import MAX_UNITS
    p.add_argument("prototxt", nargs="?", help="the Caffe deploy net (optional with --model)")
    add_model(p, "draw this converted model's symbol (and the prototxt its name map records) instead of "
                 "converting now")
    p.add_argument("-o", "--output", default="graphs", metavar="DIR", help="output directory (default ./graphs)")
    p.add_argument("--max-nodes", type=int, default=MAX_UNITS, metavar="N",
                   help=f"most nodes on one page before layers are grouped by name prefix (default {MAX_UNITS}; "
                   f"a large value draws everything on one page)")
    p.add_argument("--no-mxnet", action="store_true", help="only the Caffe graph (no conversion)")
    add_max_memory(p)
    add_input_shape(p)


def _symbol(net, progress):
    from caffe2mx.converter import budget
    from caffe2mx.converter.pipeline import bind, convert_net
    from caffe2mx.seeding import seeded_weights
    budget.check(net, "convert", seeded=False)
    conv = convert_net(bind(net, seeded_weights(net, calibrate_bn=False)), progress=progress)
    return conv.symbol, conv.name_map


def run(args):
    from caffe2mx.converter.pipeline import read_net
    from caffe2mx.verify import graphs

    if args.max_nodes < 2:
        raise UsageError("--max-nodes must be at least 2")
    if not graphs.have_dot():
        raise UsageError("graphviz's `dot` program is not installed (Debian/Ubuntu: apt-get install graphviz)")
    out = Path(args.output)
    conv = None
    if args.model:
        from caffe2mx.converter.model_files import load
        conv = load(args.model)
    prototxt = args.prototxt or (conv.name_map.get("prototxt") if conv else None)
    if not prototxt:
        raise UsageError("give the prototxt (or --model PREFIX of a converted model)")
    progress = Progress(args.quiet)
    try:
        if conv and args.input_shape:
            raise UsageError("--input-shape goes with a prototxt, not with --model (the model has its shapes)")
        shapes_in = {k: tuple(v) for k, v in conv.name_map["input_shapes"].items()} if conv else input_shapes(args)
        net = read_net(prototxt, shapes_in, progress=progress)
        graph, shapes = net.graph, net.shapes
        try:  # only once the inputs have been read: a failing run leaves no directory behind
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{out}: cannot create the output directory ({exc})") from None
        progress("drawing the Caffe graph")
        _, n_caffe = graphs.render_to(graphs.caffe_graph(graph, shapes), out, "caffe", max_units=args.max_nodes)
        lines = [f"wrote {out / 'caffe.svg'} ({len(graph.nodes)} layers"
                 + (f", {n_caffe} group pages in {out / 'caffe'})" if n_caffe else ")")]
        if not args.no_mxnet:
            symbol, name_map = (conv.symbol, conv.name_map) if conv else _symbol(net, progress)
            progress("drawing the MXNet symbol")
            _, n_mx = graphs.render_to(graphs.mxnet_graph(symbol, name_map), out, "mxnet", max_units=args.max_nodes)
            lines.append(f"wrote {out / 'mxnet.svg'}" + (f" ({n_mx} group pages in {out / 'mxnet'})" if n_mx else ""))
    finally:
        progress.done()
    print("\n".join(lines))
    return 0
