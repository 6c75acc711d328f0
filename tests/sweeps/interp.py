"""Sweep cases: The fork's Interp."""
from . import DATA4, case, layer, make_net  # noqa: F401

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
