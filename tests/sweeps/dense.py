"""Sweep cases: InnerProduct."""
import itertools

from . import DATA4, case, layer, make_net  # noqa: F401

# InnerProduct
for axis, transpose, bias in itertools.product((1, 2), (False, True), (True, False)):
    case(f"InnerProduct-axis{axis}-{'T' if transpose else 'N'}-{'bias' if bias else 'nobias'}",
         make_net(layer("fc", "InnerProduct", param=f"inner_product_param {{ num_output: 5 axis: {axis} "
                        f"transpose: {str(transpose).lower()} bias_term: {str(bias).lower()} }}"), (DATA4,)))
