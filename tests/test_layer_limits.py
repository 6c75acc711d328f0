"""Caffe's own limits on the layer types issue 9 added: a net past them is refused by
read_net with the file, line and layer named and the reason, never converted to something
Caffe would not compute."""
import re

import pytest

from caffe2mx.converter.errors import ModelError, ModelErrors
from caffe2mx.converter.pipeline import read_net

DATA = 'input: "data"\ninput_shape { dim: 2 dim: 6 dim: 5 dim: 5 }\n'

LIMITS = {
    "pool-ave-mask": ('type: "Pooling" bottom: "data" top: "p" top: "m" pooling_param { pool: AVE kernel_size: 2 }',
                      "second top .* only for MAX pooling"),
    "pool-round-ceil-contradiction": ('type: "Pooling" bottom: "data" top: "p" pooling_param { kernel_size: 2 '
                                      'round_mode: CEIL ceil_mode: false }', "round_mode CEIL contradicts ceil_mode"),
    "pool-pad-kernel": ('type: "Pooling" bottom: "data" top: "p" pooling_param { kernel_size: 2 pad: 2 }',
                        r"pad \(2, 2\) must be smaller than the kernel"),
    "depthwise-num-output": ('type: "ConvolutionDepthwise" bottom: "data" top: "c" convolution_param { num_output: 8 '
                             'kernel_size: 3 }', "num_output 8 differs from the 6 input channels"),
    "depthwise-group": ('type: "DepthwiseConvolution" bottom: "data" top: "c" convolution_param { group: 2 '
                        'kernel_size: 3 }', "group 2 differs from the 6 input channels"),
    "shuffle-groups": ('type: "ShuffleChannel" bottom: "data" top: "s" shuffle_channel_param { group: 4 }',
                       "6 channels do not split into 4 groups"),
    "tile-no-tiles": ('type: "Tile" bottom: "data" top: "t"', "tile_param.tiles is required"),
    "tile-axis": ('type: "Tile" bottom: "data" top: "t" tile_param { axis: 4 tiles: 2 }', "axis 4 is out of range"),
    "reduction-0d": ('type: "Reduction" bottom: "data" top: "r"', "0-d blob"),
    "argmax-top-k": ('type: "ArgMax" bottom: "data" top: "a" argmax_param { top_k: 151 }',
                     "top_k 151 exceeds the 150 values"),
    "argmax-axis-top-k": ('type: "ArgMax" bottom: "data" top: "a" argmax_param { axis: 1 top_k: 7 }',
                          "top_k 7 exceeds the 6 values"),
    "spp-too-deep": ('type: "SPP" bottom: "data" top: "s" spp_param { pyramid_height: 4 }',
                     r"level 2 \(4x4 bins\) of a 5x5 input needs pad \(2, 2\) >= kernel \(2, 2\), which Caffe's "
                     r"pooling refuses"),
    "spp-no-height": ('type: "SPP" bottom: "data" top: "s"', "pyramid_height must be at least 1"),
    "embed-no-input-dim": ('type: "Embed" bottom: "data" top: "e" embed_param { num_output: 3 }',
                           "embed_param.input_dim must be given"),
    "parameter-no-shape": ('type: "Parameter" top: "p"', "parameter_param.shape is missing"),
    "axpy-shapes": ('type: "Axpy" bottom: "data" bottom: "data" bottom: "data" top: "a"',
                    r"scale \[2, 6, 5, 5\] must be N x C"),
    "relu6-slope": ('type: "ReLU6" bottom: "data" top: "r" relu_param { negative_slope: 0.1 }', "no leaky form"),
    "silence-top": ('type: "Silence" bottom: "data" top: "s"', r"produces 0 top\(s\), got 1"),
    "threshold-bottoms": ('type: "Threshold" top: "t"', r"takes 1 bottom\(s\), got 0"),
}


@pytest.mark.parametrize("body,pattern", LIMITS.values(), ids=LIMITS.keys())
def test_limit_is_refused_with_the_layer_named(tmp_path, body, pattern):
    path = tmp_path / "net.prototxt"
    path.write_text(DATA + f'layer {{ name: "probe" {body} }}\n')
    with pytest.raises((ModelError, ModelErrors)) as info:
        read_net(path)
    err = info.value
    first = err.errors[0] if isinstance(err, ModelErrors) else err
    assert (first.file, first.line, first.layer) == (str(path), 3, "probe"), str(err)
    assert re.search(pattern, first.message), str(err)
