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
