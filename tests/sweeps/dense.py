"""Sweep cases: InnerProduct."""
import itertools

from . import DATA4, case, layer, make_net  # noqa: F401

# InnerProduct
for axis, transpose, bias in itertools.product((1, 2), (False, True), (True, False)):
    case(f"InnerProduct-axis{axis}-{'T' if transpose else 'N'}-{'bias' if bias else 'nobias'}",
         make_net(layer("fc", "InnerProduct", param=f"inner_product_param {{ num_output: 5 axis: {axis} "
                        f"transpose: {str(transpose).lower()} bias_term: {str(bias).lower()} }}"), (DATA4,)))

# Embed: integer indices over the whole table, with and without bias, 1-D to 4-D index blobs
for eid, shape, bias in (("1d", (5,), True), ("2d-nobias", (2, 5), False), ("4d", (2, 3, 1, 2), True),
                         ("2d", (3, 4), True)):
    case(f"Embed-{eid}", make_net(layer("emb", "Embed", param=f"embed_param {{ input_dim: 7 num_output: 3 "
                                                               f"bias_term: {str(bias).lower()} }}"),
                                  (("data", shape),)), opts={"in_ints": {"data": (0, 7)}})
