"""Python API mirroring the CLI."""
from .converter.pipeline import Conversion, convert_net, load_net, save


def convert(prototxt, caffemodel=None, *, output_prefix=None, bn_blob3="inv_std", seed=None, input_shapes=None,
            progress=None):
    """Convert a Caffe net; returns a Conversion with .symbol, .arg_params, .aux_params, .name_map.

    Without a caffemodel the net gets seeded weights from `init_weights` (seed 0 unless
    given) and `name_map["caffemodel"]` says so. With `output_prefix` the three files
    PREFIX-symbol.json, PREFIX-0000.params and PREFIX-namemap.json are written too.
    """
    weights = None
    if caffemodel is None:
        from .converter.init_weights import seeded_weights
        weights = seeded_weights(prototxt, seed=0 if seed is None else seed, input_shapes=input_shapes)
    net = load_net(prototxt, caffemodel, weights=weights, input_shapes=input_shapes, progress=progress)
    conv = convert_net(net, bn_blob3=bn_blob3, progress=progress)
    if caffemodel is None:
        conv.name_map["caffemodel"] = None
        conv.name_map["seeded_weights"] = 0 if seed is None else seed
    if output_prefix is not None:
        conv.files = save(conv, output_prefix)
    return conv


__all__ = ["convert", "load_net", "convert_net", "save", "Conversion"]
