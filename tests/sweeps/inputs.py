"""Sweep cases: The three input declaration styles."""
from . import DATA4, case, layer, make_net  # noqa: F401

# The three input declaration styles, on a small two-layer net
for style in ("input_dim", "input_shape", "input_layer"):
    case(f"inputs-{style}", make_net(layer("c", "Convolution", param="convolution_param { num_output: 3 "
                                           "kernel_size: 3 pad: 1 }") + layer("r", "ReLU", bottoms=("c",), tops=("c",)),
                                     (("data", (1, 2, 5, 6)),), style=style))

# Parameter: a learned blob as a top (no bottom), used by Bias as its second bottom and by Eltwise
case("Parameter-bias", make_net(layer("param", "Parameter", bottoms=(), param="parameter_param { shape { dim: 3 } }")
                                + layer("bias", "Bias", bottoms=("data", "param"), param="bias_param { axis: 1 }"),
                                (DATA4,)))
case("Parameter-4d-prod", make_net(layer("param", "Parameter", bottoms=(),
                                         param="parameter_param { shape { dim: 2 dim: 3 dim: 4 dim: 5 } }")
                                   + layer("prod", "Eltwise", bottoms=("data", "param"),
                                           param="eltwise_param { operation: PROD }"), (DATA4,)))
case("Parameter-output", make_net(layer("param", "Parameter", bottoms=(), param="parameter_param { shape { dim: 2 "
                                                                                "dim: 7 } }")
                                  + layer("r", "ReLU"), (DATA4,)))
