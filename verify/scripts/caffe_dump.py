#!/usr/bin/env python
"""Dump every blob of a Caffe net after one forward pass, for `caffe2mx verify --reference`.

Runs inside your own pycaffe (BVLC or any fork, CPU or GPU); imports only numpy and caffe.

    python caffe_dump.py NET.prototxt [WEIGHTS.caffemodel] -o acts.npz [--input x.npy | --seed 0]

The .npz holds each blob under its exact Caffe name (values after the forward pass, so
in-place layers have overwritten theirs), the input fed under "__input__/<name>", and a
JSON string under "__caffe2mx_meta__": Caffe's version, the layer types seen and which of
them are not BVLC types (e.g. the Residual Attention fork's BN and Interp).
"""
import argparse
import json
import sys

import numpy as np

META_KEY = "__caffe2mx_meta__"
INPUT_PREFIX = "__input__/"
FORMAT = "caffe2mx-activations/1"

BVLC_TYPES = {
    "AbsVal", "Accuracy", "ArgMax", "BatchNorm", "BatchReindex", "Bias", "BNLL", "Clip", "Concat",
    "ContrastiveLoss", "Convolution", "Crop", "Data", "Deconvolution", "Dropout", "DummyData", "Eltwise",
    "ELU", "Embed", "EuclideanLoss", "Exp", "Filter", "Flatten", "HDF5Data", "HDF5Output", "HingeLoss",
    "Im2col", "ImageData", "InfogainLoss", "InnerProduct", "Input", "Log", "LRN", "LSTM", "MemoryData",
    "MultinomialLogisticLoss", "MVN", "Parameter", "Pooling", "Power", "PReLU", "Python", "Recurrent",
    "Reduction", "ReLU", "Reshape", "RNN", "Scale", "Sigmoid", "SigmoidCrossEntropyLoss", "Silence",
    "Slice", "Softmax", "SoftmaxWithLoss", "Split", "SPP", "Swish", "TanH", "Threshold", "Tile",
    "WindowData",
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("prototxt")
    p.add_argument("caffemodel", nargs="?", help="weights (omit to run with the prototxt's own fillers)")
    p.add_argument("-o", "--output", required=True, help="the .npz to write")
    p.add_argument("--input", help=".npy (one input) or .npz keyed by input name, already preprocessed")
    p.add_argument("--seed", type=int, default=0, help="seed of the U(-1,1) input when --input is not given")
    p.add_argument("--gpu", type=int, default=None, help="GPU id (default: CPU)")
    return p.parse_args(argv)


def caffe_version(caffe):
    for attr in ("__version__", "version"):
        value = getattr(caffe, attr, None)
        if isinstance(value, str):
            return value
    return "unknown"


def make_inputs(net, path, seed):
    names = list(net.inputs)
    shapes = {n: tuple(net.blobs[n].data.shape) for n in names}
    if path is None:
        rng = np.random.RandomState(seed)
        return {n: rng.uniform(-1, 1, shapes[n]).astype(np.float32) for n in names}
    loaded = np.load(path, allow_pickle=False)
    if isinstance(loaded, np.ndarray):
        if len(names) != 1:
            sys.exit(f"{path}: the net has {len(names)} inputs ({', '.join(names)}); give a .npz keyed by name")
        loaded = {names[0]: loaded}
    out = {}
    for n in names:
        if n not in loaded:
            sys.exit(f"{path}: no array for input '{n}'")
        arr = np.asarray(loaded[n], np.float32)
        if arr.shape == shapes[n][1:]:
            arr = arr[None]
        out[n] = arr
    return out


def layer_types(net):
    layers = getattr(net, "layers", [])
    return [str(layer.type) for layer in layers]


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import caffe

    if args.gpu is None:
        caffe.set_mode_cpu()
    else:
        caffe.set_mode_gpu()
        caffe.set_device(args.gpu)
    if args.caffemodel:
        net = caffe.Net(args.prototxt, caffe.TEST, weights=args.caffemodel)
    else:
        net = caffe.Net(args.prototxt, caffe.TEST)
    inputs = make_inputs(net, args.input, args.seed)
    for name, arr in inputs.items():
        net.blobs[name].reshape(*arr.shape)
        net.blobs[name].data[...] = arr
    net.forward()

    arrays = {name: np.array(blob.data, dtype=np.float32, copy=True) for name, blob in net.blobs.items()}
    arrays.update({INPUT_PREFIX + n: a for n, a in inputs.items()})
    types = layer_types(net)
    meta = {
        "format": FORMAT,
        "caffe_version": caffe_version(caffe),
        "caffe_module": getattr(caffe, "__file__", None),
        "prototxt": args.prototxt,
        "caffemodel": args.caffemodel,
        "inputs": list(inputs),
        "input_seed": None if args.input else args.seed,
        "layer_types": sorted(set(types)),
        "fork_layer_types": sorted(set(types) - BVLC_TYPES),
        "blobs": list(net.blobs.keys()),
    }
    arrays[META_KEY] = np.array(json.dumps(meta))
    with open(args.output, "wb") as fh:
        np.savez(fh, **arrays)
    print(f"wrote {len(net.blobs)} blobs to {args.output} (Caffe {meta['caffe_version']}; "
          f"non-BVLC layer types: {', '.join(meta['fork_layer_types']) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
