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

# The forks' ceil_mode: false (floor) against the default, with pad (pad correction on both sides)
for method, (k, s, p), h in itertools.product(("MAX", "AVE"), [(3, 2, 1), (2, 2, 1), (3, 2, 0), (3, 3, 2)], (7, 8)):
    pad = f"pad: {p}" if p else ""
    case(f"pool-{method}-ceilmode-false-h{h}-k{k}s{s}p{p}",
         make_net(layer("pool", "Pooling", param=f"pooling_param {{ pool: {method} kernel_size: {k} stride: {s} "
                        f"{pad} ceil_mode: false }}"), (("data", (2, 3, h, h + 3)),)))
case("pool-MAX-ceilmode-true-k3s2p1", make_net(layer("pool", "Pooling", param="pooling_param { pool: MAX kernel_size: 3 "
                                                     "stride: 2 pad: 1 ceil_mode: true }"), (("data", (2, 3, 8, 9)),)))

# MAX with the mask top, on a coarse value grid so windows hold equal maxima (Caffe keeps the first in
# scan order); padded windows, windows past the map (-FLT_MAX and mask -1), floor rounding, kernel 1
MASK_GEOMETRY = {"k3s2": "kernel_size: 3 stride: 2", "k2s2p1": "kernel_size: 2 stride: 2 pad: 1",
                 "k3s2p2": "kernel_size: 3 stride: 2 pad: 2", "k2s3": "kernel_size: 2 stride: 3",
                 "k3s1p1-floor": "kernel_size: 3 stride: 1 pad: 1 round_mode: FLOOR",
                 "k3s2p1-ceilfalse": "kernel_size: 3 stride: 2 pad: 1 ceil_mode: false",
                 "kh3kw2-sh2sw1-ph1": "kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0",
                 "k1s2": "kernel_size: 1 stride: 2"}
for gid, geo in MASK_GEOMETRY.items():
    for quantum in (None, 0.5):
        case(f"pool-MAX-mask-{gid}{'-ties' if quantum else ''}",
             make_net(layer("pool", "Pooling", tops=("pool", "mask"), param=f"pooling_param {{ pool: MAX {geo} }}"),
                      (("data", (2, 3, 7, 8)),)), opts={"in_quantum": quantum} if quantum else {})
for quantum in (None, 0.5):
    case(f"pool-MAX-global-mask{'-ties' if quantum else ''}",
         make_net(layer("pool", "Pooling", tops=("pool", "mask"), param="pooling_param { pool: MAX global_pooling: true }"),
                  (("data", (2, 3, 5, 6)),)), opts={"in_quantum": quantum} if quantum else {})
for method, rounding in itertools.product(("MAX", "AVE"), ("round_mode: FLOOR", "ceil_mode: false")):
    case(f"pool-{method}-global-{rounding.split(':')[0]}",
         make_net(layer("pool", "Pooling", param=f"pooling_param {{ pool: {method} global_pooling: true {rounding} }}")))

# SPP: odd and even sizes (pad and the pad correction inside the levels), one level (a 4-D top)
for method, height, (h, w) in itertools.product(("MAX", "AVE"), (1, 2, 3), ((10, 11), (7, 7), (6, 9))):
    case(f"SPP-{method}-h{height}-{h}x{w}",
         make_net(layer("spp", "SPP", param=f"spp_param {{ pool: {method} pyramid_height: {height} }}"),
                  (("data", (2, 3, h, w)),)))
