"""Sweep cases: Convolution and Deconvolution."""
import itertools

from . import DATA4, case, layer, make_net  # noqa: F401

# Convolution: kernel x stride x pad, then group / depthwise / dilation, bias on and off
KERNELS = {"k3": "kernel_size: 3", "k1": "kernel_size: 1", "kh3w2": "kernel_h: 3 kernel_w: 2"}
STRIDES = {"s1": "", "s2": "stride: 2", "sh2w1": "stride_h: 2 stride_w: 1"}
PADS = {"p0": "", "p1": "pad: 1", "ph0w2": "pad_h: 0 pad_w: 2"}
for n, ((kn, k), (sn, s), (pn, p)) in enumerate(itertools.product(KERNELS.items(), STRIDES.items(), PADS.items())):
    bias = "" if n % 2 else "bias_term: false"
    case(f"conv-{kn}-{sn}-{pn}-{'bias' if n % 2 else 'nobias'}",
         make_net(layer("c", "Convolution", param=f"convolution_param {{ num_output: 6 {k} {s} {p} {bias} }}"),
                  (("data", (2, 4, 9, 8)),)))
GROUPS = {"group2": "num_output: 6 group: 2", "depthwise": "num_output: 4 group: 4",
          "depthwise-x2": "num_output: 8 group: 4", "dil2": "num_output: 6 dilation: 2",
          "dil2-group2-s2": "num_output: 6 dilation: 2 group: 2 stride: 2 pad: 2"}
for (gn, g), bias in itertools.product(GROUPS.items(), (True, False)):
    case(f"conv-{gn}-{'bias' if bias else 'nobias'}",
         make_net(layer("c", "Convolution",
                        param=f"convolution_param {{ {g} kernel_size: 3 pad: 1 bias_term: {str(bias).lower()} }}"),
                  (("data", (2, 4, 9, 8)),)))

# Deconvolution
for (k, s, p, g) in itertools.product((2, 3, 4), (1, 2, 3), (0, 1), (1, 2)):
    if p >= k:
        continue
    bias = (k + s + p + g) % 2 == 0
    case(f"deconv-k{k}-s{s}-p{p}-g{g}-{'bias' if bias else 'nobias'}",
         make_net(layer("d", "Deconvolution", param=f"convolution_param {{ num_output: 6 kernel_size: {k} "
                        f"stride: {s} pad: {p} group: {g} bias_term: {str(bias).lower()} }}"),
                  (("data", (2, 4, 5, 6)),)))

# The forks' depthwise convolution: num_output and group given (as ShuffleNet/Xception nets do) or left out,
# stride, pad, dilation, bias; both type names
DW = {"k3s1p1": "num_output: 6 group: 6 kernel_size: 3 pad: 1", "k3s2p1-nobias": "kernel_size: 3 stride: 2 pad: 1 "
      "bias_term: false", "k5s1p2-d2": "num_output: 6 kernel_size: 5 pad: 2 dilation: 2",
      "kh3kw1": "group: 6 kernel_h: 3 kernel_w: 1 pad_h: 1 pad_w: 0"}
for (did, param), type_ in itertools.product(DW.items(), ("ConvolutionDepthwise", "DepthwiseConvolution")):
    case(f"{type_}-{did}", make_net(layer("dw", type_, param=f"convolution_param {{ {param} }}"),
                                    (("data", (2, 6, 9, 10)),)))

# BVLC Im2col: square and rectangular kernels, stride, pad, dilation
IM2COL = {"k3": "kernel_size: 3", "k3s2p1": "kernel_size: 3 stride: 2 pad: 1", "k2-d2": "kernel_size: 2 dilation: 2",
          "kh3kw1-p1": "kernel_h: 3 kernel_w: 1 pad_h: 1 pad_w: 0", "k1": "kernel_size: 1"}
for iid, param in IM2COL.items():
    case(f"Im2col-{iid}", make_net(layer("cols", "Im2col", param=f"convolution_param {{ {param} }}"),
                                   (("data", (2, 3, 7, 8)),)))
