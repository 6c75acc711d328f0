"""Caffe's own upgrades of old net formats, as pure functions that build new messages.

Caffe reads a net of any era by upgrading it step by step (its `upgrade_proto`), and
these functions follow the same steps, so that an old net means here what it means in
Caffe:

1. V0 -> V1 (nets of early 2014: `layers { layer { type: "conv" ... } bottom: ... }`):
   `padding` layers are folded into the convolution or pooling layer they feed (the
   layer takes the padding layer's input and its `pad`), then each V0 layer's flat
   fields are moved into the V1 layer's parameter messages. A V0 field that has no
   home for that layer type is dropped, as Caffe drops it (with a message here).
2. Data transformation: on V1 Data/ImageData/WindowData layers, the old
   scale/mean_file/crop_size/mirror fields move into `transform_param`.
3. V1 -> V2: `layers { type: CONVOLUTION }` becomes `layer { type: "Convolution" }`,
   blobs_lr/weight_decay/param names become `param {}` specs.

The parsed messages are never modified. Every function returns new messages and the
problems it met, as messages a caller can locate (the index of the `layers` block).
"""
from dataclasses import dataclass

from .proto import caffe_pb

V1_TO_V2 = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL", "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution", "DATA": "Data",
    "DECONVOLUTION": "Deconvolution", "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output", "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData", "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct",
    "LRN": "LRN", "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence", "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH",
    "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}

#: V0 type strings and the V1 enum names Caffe maps them to.
V0_TO_V1 = {
    "accuracy": "ACCURACY", "bnll": "BNLL", "concat": "CONCAT", "conv": "CONVOLUTION", "data": "DATA",
    "dropout": "DROPOUT", "euclidean_loss": "EUCLIDEAN_LOSS", "flatten": "FLATTEN", "hdf5_data": "HDF5_DATA",
    "hdf5_output": "HDF5_OUTPUT", "im2col": "IM2COL", "images": "IMAGE_DATA", "infogain_loss": "INFOGAIN_LOSS",
    "innerproduct": "INNER_PRODUCT", "lrn": "LRN", "multinomial_logistic_loss": "MULTINOMIAL_LOGISTIC_LOSS",
    "pool": "POOLING", "relu": "RELU", "sigmoid": "SIGMOID", "softmax": "SOFTMAX", "softmax_loss": "SOFTMAX_LOSS",
    "split": "SPLIT", "tanh": "TANH", "window_data": "WINDOW_DATA",
}



def _v1():
    """The V1 message class, looked up per use: --proto rebuilds the schema's classes."""
    return caffe_pb.V1LayerParameter


_V1_PARAM_FIELDS = [f.name for f in _v1().DESCRIPTOR.fields if f.name.endswith("_param")]

# V0 field -> {V0 type: (V1 parameter message, its field, how: "set" | "add" | "copy")}.
# Fields that go to transform_param for every type are in _V0_TRANSFORM.
_V0_FIELDS = {
    "num_output": {"conv": ("convolution_param", "num_output", "set"),
                   "innerproduct": ("inner_product_param", "num_output", "set")},
    "biasterm": {"conv": ("convolution_param", "bias_term", "set"),
                 "innerproduct": ("inner_product_param", "bias_term", "set")},
    "weight_filler": {"conv": ("convolution_param", "weight_filler", "copy"),
                      "innerproduct": ("inner_product_param", "weight_filler", "copy")},
    "bias_filler": {"conv": ("convolution_param", "bias_filler", "copy"),
                    "innerproduct": ("inner_product_param", "bias_filler", "copy")},
    "pad": {"conv": ("convolution_param", "pad", "add"), "pool": ("pooling_param", "pad", "set")},
    "kernelsize": {"conv": ("convolution_param", "kernel_size", "add"),
                   "pool": ("pooling_param", "kernel_size", "set")},
    "group": {"conv": ("convolution_param", "group", "set")},
    "stride": {"conv": ("convolution_param", "stride", "add"), "pool": ("pooling_param", "stride", "set")},
    "pool": {"pool": ("pooling_param", "pool", "set")},  # V0 and V1 PoolMethod numbers agree
    "dropout_ratio": {"dropout": ("dropout_param", "dropout_ratio", "set")},
    "local_size": {"lrn": ("lrn_param", "local_size", "set")},
    "alpha": {"lrn": ("lrn_param", "alpha", "set")},
    "beta": {"lrn": ("lrn_param", "beta", "set")},
    "k": {"lrn": ("lrn_param", "k", "set")},
    "source": {"data": ("data_param", "source", "set"), "hdf5_data": ("hdf5_data_param", "source", "set"),
               "images": ("image_data_param", "source", "set"),
               "window_data": ("window_data_param", "source", "set"),
               "infogain_loss": ("infogain_loss_param", "source", "set")},
    "batchsize": {"data": ("data_param", "batch_size", "set"),
                  "hdf5_data": ("hdf5_data_param", "batch_size", "set"),
                  "images": ("image_data_param", "batch_size", "set"),
                  "window_data": ("window_data_param", "batch_size", "set")},
    "rand_skip": {"data": ("data_param", "rand_skip", "set"), "images": ("image_data_param", "rand_skip", "set")},
    "shuffle_images": {"images": ("image_data_param", "shuffle", "set")},
    "new_height": {"images": ("image_data_param", "new_height", "set")},
    "new_width": {"images": ("image_data_param", "new_width", "set")},
    "concat_dim": {"concat": ("concat_param", "concat_dim", "set")},
    "det_fg_threshold": {"window_data": ("window_data_param", "fg_threshold", "set")},
    "det_bg_threshold": {"window_data": ("window_data_param", "bg_threshold", "set")},
    "det_fg_fraction": {"window_data": ("window_data_param", "fg_fraction", "set")},
    "det_context_pad": {"window_data": ("window_data_param", "context_pad", "set")},
    "det_crop_mode": {"window_data": ("window_data_param", "crop_mode", "set")},
    "hdf5_output_param": {"hdf5_output": ("hdf5_output_param", None, "copy")},
}
_V0_TRANSFORM = {"scale": "scale", "meanfile": "mean_file", "cropsize": "crop_size", "mirror": "mirror"}
# V0 fields Caffe's upgrade never reads (it drops them without a word).
_V0_SILENT = {"name", "type", "blobs", "blobs_lr", "weight_decay", "new_num", "new_channels"}

# V1 data layers whose old transformation fields move into transform_param.
_DATA_TRANSFORM = {"DATA": "data_param", "IMAGE_DATA": "image_data_param", "WINDOW_DATA": "window_data_param"}


@dataclass(frozen=True)
class Upgraded:
    """One V2 layer made from the `layers` block at `source` (V0 padding blocks folded in: `folded`)."""

    layer: object  # caffe_pb.LayerParameter
    source: int
    folded: tuple = ()
    problems: tuple = ()  # what Caffe's upgrade would log and drop, as sentences


def is_v0(net):
    """Does the net hold V0 layers (a `layer {}` inside a `layers {}` block)?"""
    return any(l.HasField("layer") for l in net.layers)


def fold_v0_padding(layers, inputs=()):
    """V0 `padding` layers folded into the conv/pool layer each feeds.

    Returns ([(V1LayerParameter, source index, folded indices)], [(source index, problem)]),
    the layers new copies, the padding layers gone.
    """
    last_writer = {name: None for name in inputs}
    out, errors, position = [], [], {}
    for i, block in enumerate(layers):
        v0 = block.layer
        if v0.type != "padding":
            copy = caffe_pb.V1LayerParameter()
            copy.CopyFrom(block)
            position[i] = len(out)
            out.append([copy, i, []])
        for j, blob in enumerate(block.bottom):
            src = last_writer.get(blob)
            if src is None or layers[src].layer.type != "padding":
                continue
            pad_block = layers[src]
            if v0.type not in ("conv", "pool"):
                errors.append((i, f"takes the output of padding layer '{pad_block.layer.name}'; Caffe folds "
                                  f"padding only into a convolution or pooling layer, not '{v0.type}'"))
                continue
            if len(block.bottom) != 1 or len(pad_block.bottom) != 1 or len(pad_block.top) != 1:
                errors.append((i, f"padding layer '{pad_block.layer.name}' can be folded only with one bottom "
                                  f"and one top on both layers"))
                continue
            entry = out[position[i]]
            entry[0].layer.pad = pad_block.layer.pad
            entry[0].bottom[j] = pad_block.bottom[0]
            entry[2].append(src)
        for blob in block.top:
            last_writer[blob] = i
    return [(c, i, tuple(f)) for c, i, f in out], errors


def v0_to_v1(block):
    """A V1 layer from a V1 block holding a V0 layer; also the V0 fields that had no home."""
    v0 = block.layer
    out = caffe_pb.V1LayerParameter(name=v0.name, bottom=block.bottom, top=block.top)
    if v0.HasField("type"):
        v1_name = V0_TO_V1.get(v0.type)
        out.type = _v1().LayerType.Value(v1_name) if v1_name else _v1().NONE
    out.blobs.extend(v0.blobs)
    out.blobs_lr.extend(v0.blobs_lr)
    out.weight_decay.extend(v0.weight_decay)
    dropped = []
    for f, value in v0.ListFields():
        name = f.name
        if name in _V0_SILENT:
            continue
        if name in _V0_TRANSFORM:
            setattr(out.transform_param, _V0_TRANSFORM[name], value)
            continue
        where = _V0_FIELDS.get(name, {}).get(v0.type)
        if where is None:
            dropped.append(name)
            continue
        message, field, how = where
        target = getattr(out, message)
        if how == "set":
            setattr(target, field, value)
        elif how == "add":
            getattr(target, field).append(value)
        elif field is None:
            target.CopyFrom(value)
        else:
            getattr(target, field).CopyFrom(value)
    return out, tuple(dropped)


def upgrade_data_transformation(v1):
    """A copy of a V1 data layer with scale/mean_file/crop_size/mirror moved into transform_param."""
    out = caffe_pb.V1LayerParameter()
    out.CopyFrom(v1)
    field = _DATA_TRANSFORM.get(_v1().LayerType.Name(v1.type)) if v1.type in _v1().LayerType.values() else None
    if field is None or not out.HasField(field):
        return out
    old = getattr(out, field)
    for name in ("scale", "mean_file", "crop_size", "mirror"):
        if old.HasField(name):
            setattr(out.transform_param, name, getattr(old, name))
            old.ClearField(name)
    return out


def v1_to_v2(v1):
    """A new LayerParameter with a V1 layer's content; the V1 message is left as it is."""
    layer = caffe_pb.LayerParameter(name=v1.name, bottom=v1.bottom, top=v1.top)
    type_name = _v1().LayerType.Name(v1.type) if v1.type in _v1().LayerType.values() else str(v1.type)
    layer.type = V1_TO_V2.get(type_name, type_name)
    layer.include.extend(v1.include)
    layer.exclude.extend(v1.exclude)
    layer.blobs.extend(v1.blobs)
    n_specs = max(len(v1.param), len(v1.blob_share_mode), len(v1.blobs_lr), len(v1.weight_decay))
    for i in range(n_specs):
        spec = layer.param.add()
        if i < len(v1.param):
            spec.name = v1.param[i]
        if i < len(v1.blob_share_mode):
            spec.share_mode = v1.blob_share_mode[i]  # V1 and ParamSpec DimCheckMode numbers agree
        if i < len(v1.blobs_lr):
            spec.lr_mult = v1.blobs_lr[i]
        if i < len(v1.weight_decay):
            spec.decay_mult = v1.weight_decay[i]
    layer.loss_weight.extend(v1.loss_weight)
    for fname in _V1_PARAM_FIELDS:
        if v1.HasField(fname):
            getattr(layer, fname).CopyFrom(getattr(v1, fname))
    return layer


def upgrade_layers(layers, inputs=()):
    """Every `layers {}` block of a net (V0 or V1) as V2 layers, in order, with the problems met.

    Returns ([Upgraded], [(source index, problem)]): the second list holds what Caffe
    itself refuses (a padding layer it cannot fold); `Upgraded.problems` what it drops.
    """
    errors = []
    if any(l.HasField("layer") for l in layers):
        folded, errors = fold_v0_padding(layers, inputs)
        v1s = []
        for block, source, pads in folded:
            v1, dropped = v0_to_v1(block)
            problems = []
            if not block.layer.HasField("type") or block.layer.type not in V0_TO_V1:
                problems.append(f"V0 layer type '{block.layer.type}' has no later equivalent")
            if dropped:
                problems.append(f"V0 field(s) {', '.join(dropped)} do not apply to a '{block.layer.type}' layer "
                                f"(Caffe's upgrade drops them)")
            # An unknown V0 type keeps its own name, for the error that lists unsupported types.
            own_type = None if block.layer.type in V0_TO_V1 else block.layer.type
            v1s.append((v1, source, pads, tuple(problems), own_type))
    else:
        v1s = [(l, i, (), (), None) for i, l in enumerate(layers)]
    out = []
    for v1, source, pads, problems, own_type in v1s:
        layer = v1_to_v2(upgrade_data_transformation(v1))
        if own_type is not None:
            layer.type = own_type
        out.append(Upgraded(layer=layer, source=source, folded=pads, problems=problems))
    return out, errors
