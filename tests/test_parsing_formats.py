"""Every format era of Caffe nets builds: V0 (2014), V1 `layers {}` with input_dim, `input_shape`,
`Input` layers (also next to a dimless `input:`), and data layers as inputs.

Expected shapes are worked out by hand from Caffe's rules (noted beside each case) or are
published sizes (AlexNet/CaffeNet feature maps; OpenPose's stride-8 output maps with 19
heat maps and 38 PAF channels for COCO). None is read back from the code under test.
"""
import re

import pytest

from caffe2mx.converter.errors import ModelError, ModelErrors, UsageError
from caffe2mx.converter.graph import build_graph
from caffe2mx.converter.prototxt import parse_prototxt_text, read_prototxt
from caffe2mx.converter.proto import caffe_pb
from caffe2mx.converter.shapes import check_supported, infer_shapes
from caffe2mx.converter.upgrade import upgrade_data_transformation

from conftest import SHARED, need_shared

CORPUS = SHARED / "fixtures" / "corpus"


def corpus_graph(name, input_shapes=None):
    return build_graph(read_prototxt(need_shared(CORPUS / name)), input_shapes=input_shapes)


def line_of(text, token):
    return text.count("\n", 0, text.index(token)) + 1


# --- V0 ------------------------------------------------------------------------------------

# CaffeNet's feature maps (Krizhevsky et al. 2012 / the BVLC model zoo), batch 10 from input_dim.
CAFFENET = {"conv1": (10, 96, 55, 55), "pool1": (10, 96, 27, 27), "conv2": (10, 256, 27, 27),
            "pool2": (10, 256, 13, 13), "conv3": (10, 384, 13, 13), "conv4": (10, 384, 13, 13),
            "conv5": (10, 256, 13, 13), "pool5": (10, 256, 6, 6), "fc6": (10, 4096), "fc7": (10, 4096),
            "fc8": (10, 1000)}


def test_v0_caffenet_builds_as_caffe_upgrades_it():
    graph = corpus_graph("bvlc_caffenet_v0.prototxt")
    check_supported(graph)
    types = {n.name: n.type for n in graph.nodes}
    assert types["conv1"] == "Convolution" and types["pool1"] == "Pooling" and types["norm1"] == "LRN"
    assert types["fc6"] == "InnerProduct" and types["drop6"] == "Dropout" and types["prob"] == "Softmax"
    conv2 = graph.node("conv2").param.convolution_param
    assert (list(conv2.pad), list(conv2.kernel_size), conv2.group) == ([2], [5], 2)
    assert graph.node("conv1").param.param[1].lr_mult == 2  # blobs_lr: 2 on the bias
    shapes = infer_shapes(graph)
    for blob, shape in CAFFENET.items():
        assert shapes[graph.final_version[blob]] == shape, blob


V0_PADDED = '''name: "v0pad"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }
layers { layer { name: "conv1" type: "conv" num_output: 4 kernelsize: 3 biasterm: false dropout_ratio: 0.3 }
         bottom: "pad1" top: "conv1" }
layers { layer { name: "pool1" type: "pool" pool: AVE kernelsize: 2 stride: 2 } bottom: "conv1" top: "pool1" }
layers { layer { name: "fc" type: "innerproduct" num_output: 5 blobs_lr: 1 blobs_lr: 2 } bottom: "pool1" top: "fc" }
'''


def test_v0_padding_layer_folds_into_the_convolution():
    parsed = parse_prototxt_text(V0_PADDED, "v0.prototxt")
    before = parsed.net.SerializeToString()
    graph = build_graph(parsed)
    assert parsed.net.SerializeToString() == before, "the parsed net must not change"
    assert [n.name for n in graph.nodes] == ["conv1", "pool1", "fc"]
    conv = graph.node("conv1")
    assert conv.bottoms == ("data",) and conv.line == line_of(V0_PADDED, 'name: "conv1"')
    p = conv.param.convolution_param
    assert (list(p.pad), list(p.kernel_size), p.num_output, p.bias_term) == ([2], [3], 4, False)
    assert graph.node("pool1").param.pooling_param.pool == caffe_pb.PoolingParameter.AVE
    assert [s.lr_mult for s in graph.node("fc").param.param] == [1, 2]
    # dropout_ratio has no home on a conv layer: Caffe's upgrade drops it, here with a note
    assert any("v0.prototxt:5:" in n and "dropout_ratio" in n for n in graph.notes), graph.notes
    check_supported(graph)
    shapes = infer_shapes(graph)
    # 8 + 2*2 - 3 + 1 = 10; AVE 2/2 on 10: ceil(8/2) + 1 = 5; fc: 5 outputs
    assert shapes["conv1"] == (1, 4, 10, 10) and shapes["pool1"] == (1, 4, 5, 5) and shapes["fc"] == (1, 5)


def test_v0_padding_into_a_layer_caffe_cannot_fold_is_located():
    text = V0_PADDED.replace('bottom: "pad1" top: "conv1"', 'bottom: "data" top: "conv1"') + \
        'layers { layer { name: "act" type: "relu" } bottom: "pad1" top: "act" }\n'
    with pytest.raises(ModelErrors, match=r"v0.prototxt:9: layer 'act' \(relu\): takes the output of padding "
                                         r"layer 'pad1'"):
        build_graph(parse_prototxt_text(text, "v0.prototxt"))


def test_v0_unknown_type_keeps_its_name_for_the_unsupported_list():
    text = V0_PADDED + 'layers { layer { name: "odd" type: "frobnicate" } bottom: "fc" top: "odd" }\n'
    graph = build_graph(parse_prototxt_text(text, "v0.prototxt"))
    with pytest.raises(ModelErrors, match=r"v0.prototxt:9: layer 'odd' \(frobnicate\): unsupported layer type"):
        check_supported(graph)


# --- V1 ------------------------------------------------------------------------------------

def test_v1_alexnet_with_input_dim():
    graph = corpus_graph("bvlc_alexnet_v1.prototxt")
    check_supported(graph)
    assert graph.inputs == {"data": (10, 3, 227, 227)}
    conv1 = graph.node("conv1").param
    assert conv1.type == "Convolution" and [(s.lr_mult, s.decay_mult) for s in conv1.param] == [(1, 1), (2, 0)]
    shapes = infer_shapes(graph)
    for blob, shape in CAFFENET.items():  # AlexNet and CaffeNet share every feature-map size
        assert shapes[graph.final_version[blob]] == shape, blob


def test_v1_data_fields_move_into_transform_param():
    v1 = caffe_pb.V1LayerParameter(name="d", type=caffe_pb.V1LayerParameter.DATA)
    v1.data_param.crop_size, v1.data_param.mirror, v1.data_param.scale, v1.data_param.batch_size = 227, True, 0.5, 4
    up = upgrade_data_transformation(v1)
    assert (up.transform_param.crop_size, up.transform_param.mirror, up.transform_param.scale) == (227, True, 0.5)
    assert not up.data_param.HasField("crop_size") and up.data_param.batch_size == 4
    assert v1.data_param.crop_size == 227, "the input message must not change"


V1_DATA = '''name: "v1data"
layers { name: "data" type: DATA top: "data" top: "label" include { phase: TRAIN }
  data_param { source: "train_lmdb" batch_size: 256 crop_size: 227 } }
layers { name: "data" type: DATA top: "data" top: "label" include { phase: TEST }
  data_param { source: "val_lmdb" batch_size: 50 crop_size: 227 mirror: false }
  transform_param { mean_value: 104 mean_value: 117 mean_value: 123 } }
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1" convolution_param { num_output: 8 kernel_size: 3 } }
'''


def test_v1_test_phase_data_layer_becomes_the_input():
    graph = build_graph(parse_prototxt_text(V1_DATA, "v1.prototxt"))
    # TEST layer: batch 50, crop 227 (moved from data_param), 3 channels (three mean values);
    # the label is read by no layer and is dropped
    assert graph.inputs == {"data": (50, 3, 227, 227)}
    assert [n.name for n in graph.nodes] == ["conv1"]
    assert any("'label' is read by no layer" in n for n in graph.notes)


# --- input_shape, Input layers, dimless inputs ----------------------------------------------

def test_input_shape_era():
    path = need_shared(CORPUS / "inception_v3.prototxt")
    text = path.read_text()
    dims = tuple(int(d) for d in re.search(r"input_shape \{([^}]*)\}", text).group(1).split("dim:")[1:])
    graph = build_graph(read_prototxt(path))
    assert graph.inputs == {"data": dims} == {"data": (1, 3, 299, 299)}
    check_supported(graph)
    shapes = infer_shapes(graph)
    assert shapes[graph.final_version["prob"]] == (1, 1000)


def test_input_layer_era():
    graph = corpus_graph("bvlc_googlenet.prototxt")
    assert graph.inputs == {"data": (10, 3, 224, 224)}
    check_supported(graph)
    assert corpus_graph("bvlc_googlenet.prototxt", {"data": (1, 3, 224, 224)}).inputs == {"data": (1, 3, 224, 224)}


def test_dimless_input_next_to_an_input_layer_is_what_caffe_accepts():
    """`input: "data"` with no dims is dropped by Caffe's upgrade; the Input layer declares the blob."""
    graph = corpus_graph("cvgj_alexnet_bn.prototxt")
    assert graph.inputs == {"data": (10, 3, 227, 227)}
    check_supported(graph)


DIMLESS = '''name: "dimless"
input: "data"
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 2 kernel_size: 1 } }
'''


def test_dimless_input_without_an_input_layer_asks_for_its_shape():
    with pytest.raises(ModelError, match=r"d.prototxt:3: layer 'conv' .*declared without dims.*"
                                         r"--input-shape data=N,C,H,W"):
        build_graph(parse_prototxt_text(DIMLESS, "d.prototxt"))
    graph = build_graph(parse_prototxt_text(DIMLESS, "d.prototxt"), input_shapes={"data": (2, 3, 5, 5)})
    assert graph.inputs == {"data": (2, 3, 5, 5)}


def test_openpose_placeholder_input_resized():
    graph = corpus_graph("openpose_coco.prototxt", input_shapes={"image": (1, 3, 368, 368)})
    assert graph.inputs == {"image": (1, 3, 368, 368)}
    check_supported(graph)
    shapes = infer_shapes(graph)
    # COCO body: 38 PAF channels (L1) and 19 heat maps (L2) at stride 8: 368 / 8 = 46
    assert shapes[graph.final_version["Mconv7_stage6_L1"]] == (1, 38, 46, 46)
    assert shapes[graph.final_version["Mconv7_stage6_L2"]] == (1, 19, 46, 46)
    assert corpus_graph("openpose_coco.prototxt").inputs == {"image": (1, 3, 1, 1)}


def test_input_shapes_for_names_the_net_does_not_have():
    with pytest.raises(UsageError, match=r"'imag', which is not an input of the net \(its inputs: 'image'\)"):
        corpus_graph("openpose_coco.prototxt", input_shapes={"imag": (1, 3, 368, 368)})


# --- data layers ---------------------------------------------------------------------------

def data_net(layer_text, reads=("data",)):
    """A net whose only source is the given data layer; `reads` are the tops a Silence-like layer reads."""
    bottoms = " ".join(f'bottom: "{b}"' for b in reads)
    return f'name: "d"\n{layer_text}\nlayer {{ name: "use" type: "Silence" {bottoms} }}\n'


# (case, layer text, tops read, expected inputs), each shape by Caffe's rule for that layer:
DATA_CASES = [
    # Data: (batch_size, channels, crop, crop); 3 channels as three mean values, label read
    ("data-mean3-crop", 'layer { name: "d" type: "Data" top: "data" top: "label" data_param { batch_size: 8 } '
                        'transform_param { crop_size: 32 mean_value: 1 mean_value: 2 mean_value: 3 } }',
     ("data", "label"), {"data": (8, 3, 32, 32), "label": (8,)}),
    # Data with force_gray: 1 channel
    ("data-gray", 'layer { name: "d" type: "Data" top: "data" data_param { batch_size: 4 } '
                  'transform_param { crop_size: 28 force_gray: true } }', ("data",), {"data": (4, 1, 28, 28)}),
    # ImageData: (batch_size, is_color ? 3 : 1, new_height, new_width), a crop replaces both
    ("imagedata-new-size", 'layer { name: "d" type: "ImageData" top: "data" top: "label" '
                           'image_data_param { batch_size: 2 is_color: false new_height: 100 new_width: 120 } }',
     ("data",), {"data": (2, 1, 100, 120)}),
    ("imagedata-crop", 'layer { name: "d" type: "ImageData" top: "data" image_data_param { new_height: 100 '
                       'new_width: 120 } transform_param { crop_size: 90 } }', ("data",), {"data": (1, 3, 90, 90)}),
    # MemoryData: all four from memory_data_param
    ("memorydata", 'layer { name: "d" type: "MemoryData" top: "data" top: "label" memory_data_param { '
                   'batch_size: 5 channels: 3 height: 7 width: 9 } }', ("data", "label"),
     {"data": (5, 3, 7, 9), "label": (5,)}),
    # WindowData: (batch_size, channels, crop, crop)
    ("windowdata", 'layer { name: "d" type: "WindowData" top: "data" window_data_param { batch_size: 128 } '
                   'transform_param { crop_size: 227 mean_value: 104 mean_value: 117 mean_value: 123 } }',
     ("data",), {"data": (128, 3, 227, 227)}),
    # DummyData: one shape for every top, or the four-dim form
    ("dummy-shape", 'layer { name: "d" type: "DummyData" top: "a" top: "b" dummy_data_param { shape { dim: 2 '
                    'dim: 3 } } }', ("a", "b"), {"a": (2, 3), "b": (2, 3)}),
    ("dummy-legacy", 'layer { name: "d" type: "DummyData" top: "a" dummy_data_param { num: 1 channels: 3 '
                     'height: 4 width: 5 } }', ("a",), {"a": (1, 3, 4, 5)}),
    # SSD AnnotatedData: WARP resize to 300x300; its box-list label (1, 1, boxes, 8), one box
    ("annotated", 'layer { name: "d" type: "AnnotatedData" top: "data" top: "label" data_param { batch_size: 8 } '
                  'transform_param { mean_value: 104 mean_value: 117 mean_value: 123 resize_param { '
                  'resize_mode: WARP height: 300 width: 300 } } }', ("data", "label"),
     {"data": (8, 3, 300, 300), "label": (1, 1, 1, 8)}),
    # TSN VideoData: channels = 2 (FLOW) x new_length 5 x num_segments 3; label (batch, 1, 1, 1)
    ("tsn-flow", 'layer { name: "d" type: "VideoData" top: "data" top: "label" video_data_param { batch_size: 4 '
                 'new_length: 5 num_segments: 3 modality: FLOW } transform_param { crop_size: 224 } }',
     ("data", "label"), {"data": (4, 30, 224, 224), "label": (4, 1, 1, 1)}),
    ("tsn-rgb", 'layer { name: "d" type: "VideoData" top: "data" video_data_param { batch_size: 2 '
                'modality: RGB new_height: 256 new_width: 340 } }', ("data",), {"data": (2, 3, 256, 340)}),
    # SSD VideoData: camera frames, batch from data_param, 3 channels, resized 300x300
    ("ssd-video", 'layer { name: "d" type: "VideoData" top: "data" data_param { batch_size: 1 } video_data_param '
                  '{ video_type: WEBCAM } transform_param { resize_param { height: 300 width: 300 } } }',
     ("data",), {"data": (1, 3, 300, 300)}),
]


@pytest.mark.parametrize("case, layer, reads, expected", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_data_layer_becomes_inputs_of_its_shape(case, layer, reads, expected):
    graph = build_graph(parse_prototxt_text(data_net(layer, reads), "d.prototxt"))
    assert graph.inputs == expected
    assert [n.name for n in graph.nodes] == ["use"]
    assert any("d.prototxt:2:" in n and "becomes the net input" in n for n in graph.notes), graph.notes


@pytest.mark.parametrize("layer, asks", [
    ('layer { name: "d" type: "Data" top: "data" data_param { batch_size: 64 } }', "data=64,C,H,W"),
    ('layer { name: "d" type: "Data" top: "data" data_param { batch_size: 64 } transform_param { crop_size: 227 } }',
     "data=64,C,227,227"),
    ('layer { name: "d" type: "ImageData" top: "data" image_data_param { batch_size: 3 } }', "data=3,3,H,W"),
    ('layer { name: "d" type: "HDF5Data" top: "data" hdf5_data_param { batch_size: 10 } }', "data=10,C,H,W"),
    ('layer { name: "d" type: "AnnotatedData" top: "data" data_param { batch_size: 8 } transform_param { '
     'force_color: true resize_param { resize_mode: FIT_SMALL_SIZE height: 300 width: 300 } } }', "data=8,3,H,W"),
])
def test_data_layer_shape_not_in_the_net_asks_for_input_shape(layer, asks):
    text = data_net(layer)
    with pytest.raises(ModelError) as info:
        build_graph(parse_prototxt_text(text, "d.prototxt"))
    msg = str(info.value)
    assert msg.startswith("d.prototxt:2: layer 'd'") and "cannot be known from the net" in msg, msg
    assert f"--input-shape {asks}" in msg, msg
    graph = build_graph(parse_prototxt_text(text, "d.prototxt"), input_shapes={"data": (2, 3, 9, 9)})
    assert graph.inputs == {"data": (2, 3, 9, 9)}


def test_unknown_fields_on_a_data_layer_are_notes():
    layer = ('layer { name: "d" type: "MemoryData" top: "data" memory_data_param { batch_size: 1 channels: 3 '
             'height: 4 width: 4 pinned: true } prefetch_param { depth: 2 } }')
    graph = build_graph(parse_prototxt_text(data_net(layer), "d.prototxt"))
    notes = "\n".join(graph.notes)
    assert "memory_data_param.pinned" in notes and "prefetch_param" in notes and "--input-shape" in notes
    assert graph.inputs == {"data": (1, 3, 4, 4)}


def test_several_problems_in_one_error():
    text = data_net('layer { name: "d" type: "HDF5Data" top: "data" top: "aux" hdf5_data_param { batch_size: 2 } }',
                    ("data", "aux"))
    with pytest.raises(ModelErrors) as info:
        build_graph(parse_prototxt_text(text, "d.prototxt"))
    msg = str(info.value)
    assert "--input-shape data=2,C,H,W" in msg and "--input-shape aux=2,C,H,W" in msg
