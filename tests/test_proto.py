"""caffe.proto: descriptor up to date, fork fields, the 147/148 clash, protobuf runtimes."""
import json
import subprocess
import sys

import numpy as np
import pytest
from google.protobuf import text_format

from caffe2mx.converter.caffemodel import read_caffemodel, write_caffemodel
from caffe2mx.converter.proto import DESCRIPTOR_PATH, caffe_pb

from conftest import GOLDEN, REPO, need_shared


def test_descriptor_matches_proto(tmp_path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools (the `test` extra) regenerates the descriptor")
    sys.path.insert(0, str(REPO / "scripts"))
    import build_proto
    out = tmp_path / "caffe.desc"
    build_proto.build(out)
    assert out.read_bytes() == DESCRIPTOR_PATH.read_bytes(), "run scripts/build_proto.py after editing caffe.proto"


def test_fork_field_numbers():
    fields = caffe_pb.LayerParameter.DESCRIPTOR.fields_by_name
    assert fields["interp_param"].number == 147 and fields["bn_param"].number == 148
    bn = {f.name: f.number for f in caffe_pb.BNParameter.DESCRIPTOR.fields}
    # RAN, TSN and PSPNet forks: 1-6; SegNet's fields moved off the numbers they share (1-3).
    assert bn == {"slope_filler": 1, "bias_filler": 2, "momentum": 3, "eps": 4, "frozen": 5, "engine": 6,
                  "scale_filler": 1001, "shift_filler": 1002, "bn_mode": 1003}
    interp = {f.name: f.number for f in caffe_pb.InterpParameter.DESCRIPTOR.fields}
    assert interp == {"height": 1, "width": 2, "zoom_factor": 3, "shrink_factor": 4, "pad_beg": 5, "pad_end": 6}
    assert caffe_pb.BNParameter().eps == pytest.approx(1e-5) and caffe_pb.BNParameter().momentum == pytest.approx(0.9)


def test_clip_and_swish_parse_by_name():
    net = text_format.Parse('layer { name: "c" type: "Clip" clip_param { min: -1 max: 2 } }'
                            'layer { name: "s" type: "Swish" swish_param { beta: 1.5 } }', caffe_pb.NetParameter())
    assert net.layer[0].clip_param.max == 2 and net.layer[1].swish_param.beta == 1.5


def test_fork_bn_param_round_trips_on_the_wire(tmp_path):
    layer = caffe_pb.LayerParameter(name="bn", type="BN")
    layer.bn_param.frozen = True
    layer.bn_param.eps = 2e-5
    blobs = [np.full((1, 3, 1, 1), i + 1, np.float32) for i in range(4)]
    path = tmp_path / "bn.caffemodel"
    write_caffemodel(path, "n", [(layer, blobs)])
    full = caffe_pb.NetParameter.FromString(path.read_bytes())
    assert full.layer[0].bn_param.frozen and full.layer[0].bn_param.eps == pytest.approx(2e-5)
    got = read_caffemodel(path)["bn"].blobs
    assert all(np.array_equal(a, b) for a, b in zip(got, blobs))


@pytest.mark.parametrize("case", ["clash_clip_148_bvlc", "clash_swish_147_bvlc"])
def test_bvlc_caffemodel_with_clashing_field_reads(case):
    """BVLC writes clip_param at 148 / swish_param at 147, the fork's bn/interp numbers."""
    folder = need_shared(GOLDEN / case)
    raw = (folder / "weights.caffemodel").read_bytes()
    assert b"clip1" in raw or b"swish1" in raw
    weights = read_caffemodel(folder / "weights.caffemodel")
    assert set(weights) == {"conv1", "conv2"}


SNIPPET = r"""
import sys, numpy as np
sys.path.insert(0, {root!r})
import importlib.util, types
# load only the proto package, without caffe2mx's other imports (mxnet is not on this path)
spec = importlib.util.spec_from_file_location("p", {init!r}, submodule_search_locations=[])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
import google.protobuf as gp
net = mod.caffe_pb.NetParameter(name="x"); l = net.layer.add(name="bn", type="BN"); l.bn_param.frozen = True
b = l.blobs.add(); b.shape.dim.extend([1, 2]); b.data.extend([1.5, 2.5])
w = mod.caffe_pb.WeightsNet.FromString(net.SerializeToString())
assert np.frombuffer(w.layer[0].blobs[0].data[0], "<f4").tolist() == [1.5, 2.5]
print(gp.__version__)
"""


@pytest.mark.parametrize("version", ["3.20.3", "4.25.8", "5.29.5", "6.33.5"])
def test_bindings_load_under_other_protobuf_runtimes(tmp_path, version):
    """The committed descriptor set works with any protobuf onnx may pull in (>= 3.20.2)."""
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                          f"protobuf=={version}"], capture_output=True, text=True, timeout=180)
    if pip.returncode != 0:
        pytest.skip(f"cannot install protobuf {version} here: {pip.stderr.strip()[-200:]}")
    code = SNIPPET.format(root=str(target), init=str(DESCRIPTOR_PATH.parent / "__init__.py"))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == version


def test_installed_runtime_is_what_onnx_accepts():
    import google.protobuf
    import onnx
    assert onnx.ModelProto.FromString(onnx.ModelProto(ir_version=8).SerializeToString()).ir_version == 8
    assert int(google.protobuf.__version__.split(".")[0]) >= 3
    json.dumps(google.protobuf.__version__)


# LayerParameter numbers of BVLC Caffe's final caffe.proto (BVLC/caffe master, src/caffe/proto),
# except its swish_param=147/clip_param=148, which give way to the Residual Attention fork.
BVLC_LAYER_FIELDS = {
    "name": 1, "type": 2, "bottom": 3, "top": 4, "loss_weight": 5, "param": 6, "blobs": 7, "include": 8,
    "exclude": 9, "phase": 10, "propagate_down": 11, "transform_param": 100, "loss_param": 101,
    "accuracy_param": 102, "argmax_param": 103, "concat_param": 104, "contrastive_loss_param": 105,
    "convolution_param": 106, "data_param": 107, "dropout_param": 108, "dummy_data_param": 109,
    "eltwise_param": 110, "exp_param": 111, "hdf5_data_param": 112, "hdf5_output_param": 113,
    "hinge_loss_param": 114, "image_data_param": 115, "infogain_loss_param": 116, "inner_product_param": 117,
    "lrn_param": 118, "memory_data_param": 119, "mvn_param": 120, "pooling_param": 121, "power_param": 122,
    "relu_param": 123, "sigmoid_param": 124, "softmax_param": 125, "slice_param": 126, "tanh_param": 127,
    "threshold_param": 128, "window_data_param": 129, "python_param": 130, "prelu_param": 131, "spp_param": 132,
    "reshape_param": 133, "log_param": 134, "flatten_param": 135, "reduction_param": 136, "embed_param": 137,
    "tile_param": 138, "batch_norm_param": 139, "elu_param": 140, "bias_param": 141, "scale_param": 142,
    "input_param": 143, "crop_param": 144, "parameter_param": 145, "recurrent_param": 146,
}
# The forks' own numbers (each fork's caffe.proto or README): SSD (weiliu89/caffe, branch ssd),
# ShuffleNet (farmingyard/ShuffleNet), py-faster-rcnn, R-FCN (daijifeng001/caffe-rfcn).
FORK_LAYER_FIELDS = {
    "interp_param": 147, "bn_param": 148, "shuffle_channel_param": 164, "annotated_data_param": 200,
    "multibox_loss_param": 201, "permute_param": 202, "prior_box_param": 203, "detection_output_param": 204,
    "detection_evaluate_param": 205, "norm_param": 206, "video_data_param": 207,
    "box_annotator_ohem_param": 10000, "psroi_pooling_param": 10001, "roi_pooling_param": 8266711,
    "smooth_l1_loss_param": 8266712,
}
# Moved off a number another source uses (see the header of caffe.proto).
MOVED_LAYER_FIELDS = {"swish_param": 1147, "clip_param": 1148, "upsample_param": 1137}


def test_layer_parameter_numbers():
    fields = {f.name: f.number for f in caffe_pb.LayerParameter.DESCRIPTOR.fields}
    assert fields == {**BVLC_LAYER_FIELDS, **FORK_LAYER_FIELDS, **MOVED_LAYER_FIELDS}


def test_every_bvlc_message_is_there():
    bvlc = """BlobShape BlobProto BlobProtoVector Datum FillerParameter NetParameter SolverParameter SolverState
    NetState NetStateRule ParamSpec LayerParameter TransformationParameter LossParameter AccuracyParameter
    ArgMaxParameter ClipParameter ConcatParameter BatchNormParameter BiasParameter ContrastiveLossParameter
    ConvolutionParameter CropParameter DataParameter DropoutParameter DummyDataParameter EltwiseParameter
    ELUParameter EmbedParameter ExpParameter FlattenParameter HDF5DataParameter HDF5OutputParameter
    HingeLossParameter ImageDataParameter InfogainLossParameter InnerProductParameter InputParameter
    LogParameter LRNParameter MemoryDataParameter MVNParameter ParameterParameter PoolingParameter
    PowerParameter PythonParameter RecurrentParameter ReductionParameter ReLUParameter ReshapeParameter
    ScaleParameter SigmoidParameter SliceParameter SoftmaxParameter SwishParameter TanHParameter TileParameter
    ThresholdParameter WindowDataParameter SPPParameter V1LayerParameter V0LayerParameter PReLUParameter"""
    missing = [m for m in bvlc.split() if m not in caffe_pb.file.message_types_by_name]
    assert not missing
    v1 = {f.name: f.number for f in caffe_pb.V1LayerParameter.DESCRIPTOR.fields}
    assert v1["layer"] == 1 and v1["memory_data_param"] == 22 and v1["window_data_param"] == 20
    assert v1["blob_share_mode"] == 1002 and v1["contrastive_loss_param"] == 40
    v0 = {f.name: f.number for f in caffe_pb.V0LayerParameter.DESCRIPTOR.fields}
    assert (v0["kernelsize"], v0["k"], v0["det_context_pad"], v0["concat_dim"], v0["hdf5_output_param"]) == \
        (8, 22, 58, 65, 1001)


def test_pooling_round_mode_stays_bvlc_and_ceil_mode_moves():
    fields = caffe_pb.PoolingParameter.DESCRIPTOR.fields_by_name
    assert fields["round_mode"].number == 13 and fields["ceil_mode"].number == 1013
    assert (caffe_pb.PoolingParameter.CEIL, caffe_pb.PoolingParameter.FLOOR) == (0, 1)
    p = text_format.Parse("round_mode: FLOOR ceil_mode: false", caffe_pb.PoolingParameter())
    assert p.round_mode == p.FLOOR and p.ceil_mode is False and caffe_pb.PoolingParameter().ceil_mode is True


@pytest.mark.parametrize("field, number", sorted(FORK_LAYER_FIELDS.items()))
def test_fork_fields_are_written_at_the_forks_numbers(field, number):
    """On the wire, a fork's parameter message sits at the fork's number (tag = number << 3 | 2)."""
    layer = caffe_pb.LayerParameter()
    getattr(layer, field).SetInParent()
    tag, expected = layer.SerializeToString(), (number << 3) | 2
    value, shift = 0, 0
    for i, byte in enumerate(tag):
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    assert value == expected


FORK_TEXT = '''
layer { name: "p" type: "PriorBox" prior_box_param { min_size: 30 max_size: 60 aspect_ratio: 2 flip: true
        clip: false variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 step: 8 offset: 0.5 } }
layer { name: "d" type: "DetectionOutput" detection_output_param { num_classes: 21 share_location: true
        background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 400 }
        save_output_param { label_map_file: "labelmap.prototxt" } code_type: CENTER_SIZE keep_top_k: 200
        confidence_threshold: 0.01 } }
layer { name: "n" type: "Normalize" norm_param { across_spatial: false channel_shared: false
        scale_filler { type: "constant" value: 20 } } }
layer { name: "m" type: "Permute" permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "r" type: "ROIPooling" roi_pooling_param { pooled_w: 7 pooled_h: 7 spatial_scale: 0.0625 } }
layer { name: "s" type: "PSROIPooling" psroi_pooling_param { spatial_scale: 0.0625 output_dim: 21 group_size: 7 } }
layer { name: "c" type: "ShuffleChannel" shuffle_channel_param { group: 3 } }
layer { name: "u" type: "Upsample" upsample_param { scale: 2 upsample_h: 45 upsample_w: 60 pad_out_h: true } }
layer { name: "b" type: "BN" bn_param { bn_mode: INFERENCE scale_filler { type: "constant" value: 1 }
        shift_filler { type: "constant" value: 0 } } }
layer { name: "a" type: "AnnotatedData" annotated_data_param { label_map_file: "x" batch_sampler {
        sampler { min_scale: 0.3 } sample_constraint { min_jaccard_overlap: 0.1 } max_trials: 50 } }
        transform_param { resize_param { prob: 1 resize_mode: WARP height: 300 width: 300 interp_mode: LINEAR }
        emit_constraint { emit_type: CENTER } distort_param { brightness_prob: 0.5 } expand_param { prob: 0.5 } } }
layer { name: "v" type: "VideoData" video_data_param { source: "list.txt" new_length: 5 num_segments: 3
        modality: FLOW } transform_param { fix_crop: true multi_scale: true scale_ratios: 1 scale_ratios: .875 } }
layer { name: "pool" type: "Pooling" pooling_param { pool: AVE kernel_size: 3 ceil_mode: false } }
'''


def test_fork_layers_parse_by_name():
    net = text_format.Parse(FORK_TEXT, caffe_pb.NetParameter())
    by = {l.name: l for l in net.layer}
    assert list(by["p"].prior_box_param.variance) == pytest.approx([0.1, 0.1, 0.2, 0.2])
    d = by["d"].detection_output_param
    assert d.nms_param.top_k == 400 and d.code_type == caffe_pb.PriorBoxParameter.CENTER_SIZE and d.keep_top_k == 200
    assert by["n"].norm_param.scale_filler.value == 20 and list(by["m"].permute_param.order) == [0, 2, 3, 1]
    assert by["r"].roi_pooling_param.pooled_h == 7 and by["s"].psroi_pooling_param.group_size == 7
    assert by["c"].shuffle_channel_param.group == 3 and by["u"].upsample_param.upsample_w == 60
    assert by["b"].bn_param.bn_mode == caffe_pb.BNParameter.INFERENCE
    assert by["a"].transform_param.resize_param.height == 300
    assert by["v"].video_data_param.modality == caffe_pb.VideoDataParameter.FLOW
    assert by["pool"].pooling_param.ceil_mode is False
