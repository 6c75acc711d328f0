"""Run a converted MXNet model and read back every Caffe blob through the name map.

MKLDNN's subgraph backend fuses Convolution+BatchNorm(+ReLU) at bind time, and then
the convolution's internal output holds the fused value: a layer-by-layer comparison
must bind with the backend off. The final output is unaffected either way.
"""
import os

import numpy as np


def _mx():
    os.environ["MXNET_SUBGRAPH_BACKEND"] = "NONE"
    import mxnet as mx
    return mx


def run_blobs(symbol, arg_params, aux_params, name_map, inputs, blobs=None):
    """Forward pass returning {Caffe blob name: np.ndarray} for the mapped blobs.

    `inputs` maps Caffe input blob names to arrays; `blobs` limits which blobs are read
    (default: every blob in the name map). Blobs that are inputs are returned as given.
    """
    mx = _mx()
    wanted = list(name_map["blobs"]) if blobs is None else list(blobs)
    internals = symbol.get_internals()
    available = set(internals.list_outputs())
    input_vars = name_map["inputs"]
    mx_names = []
    for b in wanted:
        n = name_map["blobs"][b]
        if n in available and n not in input_vars.values() and n not in mx_names:
            mx_names.append(n)
    group = mx.sym.Group([internals[n] for n in mx_names]) if mx_names else symbol
    needed = set(group.list_arguments())
    args = {}
    for caffe_name, var in input_vars.items():
        if var in needed:
            args[var] = mx.nd.array(np.asarray(inputs[caffe_name], np.float32))
    args.update({k: v for k, v in arg_params.items() if k in needed})
    missing = needed - set(args)
    if missing:
        raise KeyError(f"no value for MXNet argument(s): {', '.join(sorted(missing))}")
    auxs = {k: v for k, v in aux_params.items() if k in set(group.list_auxiliary_states())}
    ex = group.bind(mx.cpu(), args=args, aux_states=auxs, grad_req="null")
    values = dict(zip(mx_names, (o.asnumpy() for o in ex.forward(is_train=False))))
    input_of_var = {v: k for k, v in input_vars.items()}
    out = {}
    for b in wanted:
        n = name_map["blobs"][b]
        if n in input_of_var:
            out[b] = np.asarray(inputs[input_of_var[n]], np.float32)
        elif n in values:
            out[b] = values[n]
    return out


def run_teacher_forced(net, reference_versions, bn_blob3="inv_std"):
    """Each layer of a loaded net run in MXNet on the reference values of its bottoms.

    `net` is a LoadedNet (weights bound), `reference_versions` maps every blob id to the
    reference's value. Returns {blob id: MXNet output} for every layer output: the
    layer's own error, free of what earlier layers contributed.
    """
    mx = _mx()
    from caffe2mx.converter.emit import Emitter
    from caffe2mx.converter.passes import fuse_batchnorm_scale

    graph = fuse_batchnorm_scale(net.graph)
    em = Emitter(graph, net.shapes, options={"bn_blob3": bn_blob3})
    symbol, args, auxs, name_map = em.run(teacher_forced=True)
    feeds = {var: reference_versions[bid] for bid, var in name_map["forced_inputs"].items()}
    feeds.update({var: reference_versions[bid] for bid, var in name_map["inputs"].items()})
    arrays = {k: mx.nd.array(np.asarray(v, np.float32)) for k, v in feeds.items()}
    arrays.update({k: mx.nd.array(v) for k, v in args.items()})
    needed = symbol.list_arguments()
    ex = symbol.bind(mx.cpu(), args={k: arrays[k] for k in needed},
                     aux_states={k: mx.nd.array(v) for k, v in auxs.items()}, grad_req="null")
    outs = ex.forward(is_train=False)
    by_name = dict(zip(symbol.list_outputs(), outs))
    return {bid: by_name[v["mxnet"]].asnumpy() for bid, v in name_map["versions"].items() if v["mxnet"] in by_name}
