"""Sweep cases: Eltwise."""
import itertools

from . import DATA4, case, layer, make_net  # noqa: F401

# Eltwise with 2 and 3 bottoms
for op, nb in itertools.product(("SUM", "SUM-coeff", "PROD", "MAX"), (2, 3)):
    names = [f"x{i}" for i in range(nb)]
    coeff = " ".join(f"coeff: {c}" for c in (0.5, -2, 1.5)[:nb]) if op == "SUM-coeff" else ""
    case(f"Eltwise-{op}-{nb}",
         make_net(layer("e", "Eltwise", bottoms=names, param=f"eltwise_param {{ operation: {op.split('-')[0]} "
                        f"{coeff} }}"), [(x, (2, 3, 4, 5)) for x in names]))

# SENet's Axpy: the scale as N x C x 1 x 1 (as SE blocks give it) and as N x C; 2-D x and y
for aid, a_shape, xy_shape in (("nc11", (2, 3, 1, 1), (2, 3, 4, 5)), ("nc", (2, 3), (2, 3, 4, 5)),
                               ("2d", (4, 6), (4, 6))):
    case(f"Axpy-{aid}", make_net(layer("axpy", "Axpy", bottoms=("a", "x", "y")),
                                 (("a", a_shape), ("x", xy_shape), ("y", xy_shape))))
