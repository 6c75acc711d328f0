"""Run a whole converted MXNet model and read back Caffe blobs through the name map (tests,
ONNX checks). `verify` itself runs the model piece by piece: mxnet_pieces.py.

MKLDNN's subgraph backend fuses Convolution+BatchNorm(+ReLU) at bind time, and then
the convolution's internal output holds the fused value: a layer-by-layer comparison
must bind with the backend off. The final output is unaffected either way.
"""
import os

import numpy as np

from ..converter.mxnet_import import import_mxnet


def _mx():
    os.environ["MXNET_SUBGRAPH_BACKEND"] = "NONE"
    return import_mxnet()


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
