"""Sweep cases: Element-wise activations and Softmax."""
import itertools

from . import DATA4, case, layer, make_net  # noqa: F401

# Element-wise activations
ACTS = {
    "ReLU": "", "ReLU-slope0.1": "relu_param { negative_slope: 0.1 }",
    "PReLU": "", "PReLU-shared": "prelu_param { channel_shared: true }",
    "ELU": "", "ELU-alpha0.5": "elu_param { alpha: 0.5 }",
    "Sigmoid": "", "TanH": "", "AbsVal": "",
    "Power-sq": "power_param { power: 2 scale: 0.5 shift: 1 }",
    "Power-sqrt": "power_param { power: 0.5 scale: 2 shift: 7 }",
    "Power-lin": "power_param { scale: -1.5 shift: 0.25 }",
    "Power-cube": "power_param { power: 3 }",
    "Exp": "", "Exp-base2": "exp_param { base: 2 scale: 0.5 shift: 1 }",
    "Log": "", "Log-base10": "log_param { base: 10 scale: 2 shift: 7 }",
    "Clip": "clip_param { min: -0.5 max: 0.7 }",
    "Swish": "", "Swish-beta2": "swish_param { beta: 2 }",
}
for (aid, param), inplace in itertools.product(ACTS.items(), (True, False)):
    type_ = aid.split("-")[0]
    opts = {}
    if type_ == "Log" and "shift" not in param:
        opts = {"in_shift": 6.0}
    case(f"{aid}-{'inplace' if inplace else 'out'}",
         make_net(layer("a", type_, tops=("data",) if inplace else ("a",), param=param)), opts=opts)


# BNLL on large magnitudes too: both of Caffe's branches, and x beyond where e^x overflows float32
for inplace, scale in itertools.product((True, False), (1.0, 40.0)):
    case(f"BNLL-{'inplace' if inplace else 'out'}-x{scale:g}",
         make_net(layer("a", "BNLL", tops=("data",) if inplace else ("a",))), opts={"in_scale": scale})


# Softmax, shape layers, Dropout, LRN
for axis in (1, 2, -1, 0):
    case(f"Softmax-axis{axis}", make_net(layer("sm", "Softmax", param=f"softmax_param {{ axis: {axis} }}"),
                                         (DATA4,)))
case("Softmax-2d", make_net(layer("sm", "Softmax"), (("data", (3, 7)),)))

# ReLU6 on values past both ends; Threshold on a grid of quarters, so x == threshold occurs (not > it)
for inplace in (True, False):
    case(f"ReLU6-{'inplace' if inplace else 'out'}",
         make_net(layer("a", "ReLU6", tops=("data",) if inplace else ("a",))), opts={"in_scale": 5.0})
for t in ("", "threshold_param { threshold: 0.25 }", "threshold_param { threshold: -0.5 }"):
    tid = t.split(":")[-1].strip(" }") if t else "default"
    case(f"Threshold-{tid}", make_net(layer("a", "Threshold", param=t)), opts={"in_quantum": 0.25})
case("Threshold-inplace", make_net(layer("a", "Threshold", tops=("data",), param="threshold_param { threshold: 1 }")),
     opts={"in_quantum": 0.5})
