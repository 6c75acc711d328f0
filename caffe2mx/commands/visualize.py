"""Draw a Caffe net (layers labelled with type and output shape) and its converted MXNet symbol.

Writes OUT/caffe.svg and OUT/mxnet.svg (and the .dot sources). Nets too large for one
readable picture are grouped by layer-name prefix: a group (an attention module, say)
is one node linking to its own page under OUT/caffe/ or OUT/mxnet/.
Needs graphviz's `dot` program (Debian/Ubuntu: apt-get install graphviz).
"""
from pathlib import Path

from caffe2mx.converter.errors import UsageError
from caffe2mx.progress import Progress

from ._options import add_input_shape, input_shapes

NAME = "visualize"
HELP = "render the Caffe graph and the converted MXNet symbol (graphviz SVG)"


def add_arguments(p):
    from caffe2mx.verify.graphs import MAX_UNITS
    p.add_argument("prototxt", help="the Caffe deploy net")
    p.add_argument("-o", "--output", default="graphs", metavar="DIR", help="output directory (default ./graphs)")
    p.add_argument("--max-nodes", type=int, default=MAX_UNITS, metavar="N",
                   help=f"most nodes on one page before layers are grouped by name prefix (default {MAX_UNITS}; "
                   f"a large value draws everything on one page)")
    p.add_argument("--no-mxnet", action="store_true", help="only the Caffe graph (no conversion)")
    add_input_shape(p)


def _symbol(prototxt, progress, shapes=None):
    from caffe2mx.converter.init_weights import seeded_weights
    from caffe2mx.converter.pipeline import convert_net, load_net
    weights = seeded_weights(prototxt, calibrate_bn=False, input_shapes=shapes)
    net = load_net(prototxt, weights=weights, input_shapes=shapes, progress=progress)
    conv = convert_net(net, progress=progress)
    return conv.symbol, conv.name_map


def run(args):
    from caffe2mx.converter.graph import build_graph
    from caffe2mx.converter.prototxt import read_prototxt
    from caffe2mx.converter.shapes import check_supported, infer_shapes
    from caffe2mx.verify import graphs

    if args.max_nodes < 2:
        raise UsageError("--max-nodes must be at least 2")
    if not graphs.have_dot():
        raise UsageError("graphviz's `dot` program is not installed (Debian/Ubuntu: apt-get install graphviz)")
    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{out}: cannot create the output directory ({exc})") from None
    shapes_in = input_shapes(args)
    progress = Progress(args.quiet)
    try:
        graph = build_graph(read_prototxt(args.prototxt), input_shapes=shapes_in)
        check_supported(graph)
        shapes = infer_shapes(graph)
        progress("drawing the Caffe graph")
        _, n_caffe = graphs.render_to(graphs.caffe_graph(graph, shapes), out, "caffe", max_units=args.max_nodes)
        lines = [f"wrote {out / 'caffe.svg'} ({len(graph.nodes)} layers"
                 + (f", {n_caffe} group pages in {out / 'caffe'})" if n_caffe else ")")]
        if not args.no_mxnet:
            symbol, name_map = _symbol(args.prototxt, progress, shapes_in)
            progress("drawing the MXNet symbol")
            _, n_mx = graphs.render_to(graphs.mxnet_graph(symbol, name_map), out, "mxnet", max_units=args.max_nodes)
            lines.append(f"wrote {out / 'mxnet.svg'}" + (f" ({n_mx} group pages in {out / 'mxnet'})" if n_mx else ""))
    finally:
        progress.done()
    print("\n".join(lines))
    return 0
