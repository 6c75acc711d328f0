"""Sweep cases: Reduction and ArgMax."""
import itertools

from . import DATA4, case, layer, make_net  # noqa: F401

# Reduction: each operation over the trailing axes from 1, 2, 3 and -1, with coefficients
for op, axis, coeff in itertools.product(("SUM", "ASUM", "SUMSQ", "MEAN"), (1, 2, 3, -1), (1, -0.5)):
    case(f"Reduction-{op}-axis{axis}-coeff{coeff:g}",
         make_net(layer("red", "Reduction", param=f"reduction_param {{ operation: {op} axis: {axis} "
                                                  f"coeff: {coeff} }}"), (DATA4,)))
case("Reduction-2d-axis1", make_net(layer("red", "Reduction", param="reduction_param { axis: 1 }"), (("data", (3, 7)),)))

# ArgMax: with and without axis, top_k, out_max_val, on a coarse value grid so equal values meet (Caffe
# ranks equal values by descending index); top_k = every value of the axis
ARGMAX = {"default": "", "k3": "top_k: 3", "k3-maxval": "top_k: 3 out_max_val: true",
          "axis1": "axis: 1", "axis1-k2": "axis: 1 top_k: 2", "axis1-maxval": "axis: 1 out_max_val: true",
          "axis-1-k2-maxval": "axis: -1 top_k: 2 out_max_val: true", "axis0-k2": "axis: 0 top_k: 2",
          "axis1-k3-all": "axis: 1 top_k: 3", "k60-all": "top_k: 60"}
for (aid, param), quantum in itertools.product(ARGMAX.items(), (None, 0.5)):
    case(f"ArgMax-{aid}{'-ties' if quantum else ''}",
         make_net(layer("am", "ArgMax", param=f"argmax_param {{ {param} }}"), (DATA4,)),
         opts={"in_quantum": quantum} if quantum else {})
case("ArgMax-2d-k2-maxval", make_net(layer("am", "ArgMax", param="argmax_param { top_k: 2 out_max_val: true }"),
                                     (("data", (3, 7)),)), opts={"in_quantum": 0.5})
case("ArgMax-axis0-k1-batch3", make_net(layer("am", "ArgMax", param="argmax_param { axis: 0 }"), (("data", (3, 4, 5)),)))
