"""Sweep cases: the fork's Interp, and the forks' Upsample (nearest; SegNet's unpooling)."""
from . import DATA4, case, layer, make_net  # noqa: F401
from ._fixed import fixed_blob

# The fork's Interp in every mode, with cropping and 1-px outputs
INTERP = {
    "zoom2": ("zoom_factor: 2", (2, 3, 5, 6), None),
    "zoom3": ("zoom_factor: 3", (2, 3, 4, 3), None),
    "shrink2": ("shrink_factor: 2", (2, 3, 9, 8), None),
    "shrink3": ("shrink_factor: 3", (2, 3, 10, 7), None),
    "hw-up": ("height: 11 width: 7", (2, 3, 5, 4), None),
    "hw-down": ("height: 3 width: 2", (2, 3, 9, 8), None),
    "hw-same": ("height: 5 width: 6", (2, 3, 5, 6), None),
    "hw-1px": ("height: 1 width: 1", (2, 3, 5, 6), None),
    "hw-from-1px": ("height: 4 width: 5", (2, 3, 1, 1), None),
    "hw-1xN": ("height: 1 width: 7", (2, 3, 4, 3), None),
    "bottom-up": ("", (2, 3, 4, 5), (1, 1, 8, 9)),
    "bottom-down": ("", (2, 3, 8, 9), (1, 2, 3, 5)),
    "bottom-1px": ("", (2, 3, 4, 5), (1, 1, 1, 1)),
    "zoom2-crop": ("zoom_factor: 2 pad_beg: -1 pad_end: -1", (2, 3, 6, 7), None),
    "shrink2-crop": ("shrink_factor: 2 pad_beg: -1 pad_end: 0", (2, 3, 9, 8), None),
    "hw-crop": ("height: 9 width: 4 pad_end: -2", (2, 3, 6, 7), None),
    "bottom-crop": ("pad_beg: -2 pad_end: -1", (2, 3, 7, 8), (1, 1, 6, 3)),
    "crop-to-1px": ("pad_beg: -2 pad_end: -2 height: 4 width: 4", (2, 3, 5, 5), None),
}
for iid, (param, shape, second) in INTERP.items():
    ins = [("data", shape)] + ([("ref", second)] if second else [])
    case(f"Interp-{iid}", make_net(layer("i", "Interp", bottoms=[n for n, _ in ins],
                                         param=f"interp_param {{ {param} }}"), ins))

# Upsample with one bottom: the YOLO ports' nearest neighbour (scale defaults to 1: a copy)
for uid, param, shape in (("s2", "scale: 2", (2, 3, 4, 5)), ("s3", "scale: 3", (2, 3, 3, 2)),
                          ("default", "", (2, 3, 2, 3))):
    case(f"Upsample-nearest-{uid}", make_net(layer("up", "Upsample", param=f"upsample_param {{ {param} }}"),
                                             [("data", shape)]))

# Upsample with two bottoms: SegNet's max-unpooling. The masks are built in the net (Power
# constants, see _fixed.py) so they hold chosen indices: ties (the later input wins), unused
# outputs (stay 0), every size form. The mask pattern is per (h, w), the data random.
UNPOOL = {
    # id: (upsample_param, data shape, mask pattern over (h, w))
    "all-ties": ("scale: 2", (2, 3, 3, 4), [[5] * 4] * 3),
    "ties": ("scale: 2", (2, 3, 2, 3), [[0, 5, 5], [7, 0, 11]]),
    "scale-hw": ("scale_h: 3 scale_w: 2", (2, 2, 2, 3), [[35, 0, 14], [14, 20, 35]]),
    "pad-out": ("scale: 2 pad_out_h: true pad_out_w: true", (2, 2, 3, 3), [[0, 2, 4], [10, 12, 4], [20, 22, 24]]),
    "pad-out-h": ("pad_out_h: true", (1, 2, 2, 3), [[0, 1, 17], [17, 6, 3]]),
    "size": ("upsample_h: 5 upsample_w: 7", (1, 2, 2, 3), [[34, 3, 3], [0, 17, 34]]),
    "1px": ("scale: 2", (2, 3, 1, 1), [[2]]),
    "fraction": ("scale: 2", (2, 2, 2, 2), [[0.5, 3.9], [15.99, 3.2]]),  # Caffe truncates: 0, 3, 15, 3
}
for uid, (param, shape, pattern) in UNPOOL.items():
    text = fixed_blob("m", "mask", pattern, (2, 3)) + layer("up", "Upsample", bottoms=("data", "mask"),
                                                            param=f"upsample_param {{ {param} }}")
    case(f"Upsample-unpool-{uid}", make_net(text, [("data", shape), ("m", shape)]))


def _pool_mask_supported():
    from caffe2mx.converter.layers import handler_for
    return handler_for("Pooling").n_tops[1] >= 2


# The real pooling mask: windows that cannot overlap (distinct indices, no sort) and
# overlapping ones (ties settled by the sort), once Pooling has its mask top
if _pool_mask_supported():
    POOLED = {
        # id: (pooling_param, input shape, upsample_param, pooled shape)
        "k2s2": ("pool: MAX kernel_size: 2 stride: 2", (2, 3, 6, 8), "scale: 2", (2, 3, 3, 4)),
        "k3s2": ("pool: MAX kernel_size: 3 stride: 2", (2, 3, 7, 9), "upsample_h: 7 upsample_w: 9", (2, 3, 3, 4)),
        "k2s2-pad-out": ("pool: MAX kernel_size: 2 stride: 2", (2, 3, 5, 7), "scale: 2 pad_out_h: true pad_out_w: true",
                         (2, 3, 3, 4)),
        "global": ("pool: MAX global_pooling: true", (2, 3, 4, 5), "upsample_h: 4 upsample_w: 5", (2, 3, 1, 1)),
    }
    for uid, (pool, shape, param, pooled) in POOLED.items():
        text = (layer("pool", "Pooling", tops=("pool", "mask"), param=f"pooling_param {{ {pool} }}")
                + layer("up", "Upsample", bottoms=("feat", "mask"), param=f"upsample_param {{ {param} }}"))
        case(f"Upsample-pooled-{uid}", make_net(text, [("data", shape), ("feat", pooled)]))
