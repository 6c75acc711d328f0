"""Sweep cases: The three input declaration styles."""
from . import DATA4, case, layer, make_net  # noqa: F401

# The three input declaration styles, on a small two-layer net
for style in ("input_dim", "input_shape", "input_layer"):
    case(f"inputs-{style}", make_net(layer("c", "Convolution", param="convolution_param { num_output: 3 "
                                           "kernel_size: 3 pad: 1 }") + layer("r", "ReLU", bottoms=("c",), tops=("c",)),
                                     (("data", (1, 2, 5, 6)),), style=style))
