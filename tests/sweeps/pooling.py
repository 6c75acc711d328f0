"""Sweep cases: Pooling."""
import itertools

from . import DATA4, case, layer, make_net  # noqa: F401

# Pooling: sizes where ceil and floor differ, pad correction (k3 s2 p2 on 4, k2 s2 p1 on 5)
KSP = [(3, 2, 0), (3, 2, 1), (2, 2, 0), (2, 2, 1), (3, 2, 2), (3, 1, 1), (3, 3, 1), (1, 2, 0)]
for method, h, (k, s, p) in itertools.product(("MAX", "AVE"), (4, 5, 8), KSP):
    pad = f"pad: {p}" if p else ""
    case(f"pool-{method}-h{h}w{h + 1}-k{k}s{s}p{p}",
         make_net(layer("pool", "Pooling", param=f"pooling_param {{ pool: {method} kernel_size: {k} "
                        f"stride: {s} {pad} }}"), (("data", (2, 3, h, h + 1)),)))
for method, (k, s, p) in itertools.product(("MAX", "AVE"), [(3, 2, 0), (3, 2, 1), (2, 2, 1), (3, 2, 2)]):
    case(f"pool-{method}-floor-k{k}s{s}p{p}",
         make_net(layer("pool", "Pooling", param=f"pooling_param {{ pool: {method} kernel_size: {k} "
                        f"stride: {s} pad: {p} round_mode: FLOOR }}"), (("data", (2, 3, 8, 9)),)))
for method in ("MAX", "AVE"):
    case(f"pool-{method}-global",
         make_net(layer("pool", "Pooling", param=f"pooling_param {{ pool: {method} global_pooling: true }}")))
    case(f"pool-{method}-kh3kw2-sh2sw1-ph1pw0",
         make_net(layer("pool", "Pooling", param=f"pooling_param {{ pool: {method} kernel_h: 3 kernel_w: 2 "
                        "stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0 }")))
