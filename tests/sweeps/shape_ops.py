"""Sweep cases: Concat, Slice, Split, Flatten, Reshape, Crop, Dropout."""
import itertools

from . import DATA4, case, layer, make_net  # noqa: F401

for axis in (0, 1, 2, -1):
    case(f"Concat-axis{axis}", make_net(layer("cat", "Concat", bottoms=("a", "b", "c"),
                                              param=f"concat_param {{ axis: {axis} }}"),
                                        [(n, tuple(2 + j if d == axis % 4 else x for d, x in enumerate((2, 3, 4, 5))))
                                         for j, n in enumerate("abc")]))
for axis, points in itertools.product((1, 2, 3), ((), (1,), (1, 3))):
    nt = len(points) + 1 if points else 2
    pp = " ".join(f"slice_point: {p}" for p in points)
    case(f"Slice-axis{axis}-{'-'.join(map(str, points)) or 'even'}",
         make_net(layer("sl", "Slice", tops=[f"s{i}" for i in range(nt)],
                        param=f"slice_param {{ axis: {axis} {pp} }}"), (("data", (2, 4, 6, 8)),)))
case("Split-3", make_net(layer("sp", "Split", tops=("t0", "t1", "t2"))))
for axis, end in ((1, -1), (2, -1), (1, 2), (0, 1)):
    case(f"Flatten-axis{axis}-end{end}", make_net(layer("f", "Flatten", param=f"flatten_param {{ axis: {axis} "
                                                       f"end_axis: {end} }}"), (DATA4,)))
RESHAPES = {"0-neg1": "shape { dim: 0 dim: -1 }", "0-0-20": "shape { dim: 0 dim: 0 dim: 20 }",
            "6-20": "shape { dim: 6 dim: 20 }", "0-3-2-2-5": "shape { dim: 0 dim: 3 dim: 2 dim: 2 dim: 5 }",
            "neg1-5": "shape { dim: -1 dim: 5 }", "axis1-numaxes1": "shape { dim: 3 dim: 1 } axis: 1 num_axes: 1",
            # Caffe counts a negative reshape axis from one past the end: -1 appends, -2 replaces the last
            "axis-neg1-append": "shape { dim: 1 dim: 1 } axis: -1", "axis-neg2": "shape { dim: 5 dim: 1 } axis: -2",
            "axis2-numaxes0": "shape { dim: 1 } axis: 2 num_axes: 0"}
for rid, body in RESHAPES.items():
    case(f"Reshape-{rid}", make_net(layer("r", "Reshape", param=f"reshape_param {{ {body} }}"),
                                    (DATA4,)))
for axis, offsets in ((2, ""), (2, "offset: 1"), (2, "offset: 1 offset: 2"), (1, "offset: 1"), (3, "offset: 3")):
    case(f"Crop-axis{axis}-{offsets.replace('offset: ', 'o').replace(' ', '') or 'o0'}",
         make_net(layer("cr", "Crop", bottoms=("data", "ref"), param=f"crop_param {{ axis: {axis} {offsets} }}"),
                  (("data", (2, 4, 7, 9)), ("ref", (1, 3, 4, 5)))))
case("Dropout-inplace", make_net(layer("dr", "Dropout", tops=("data",), param="dropout_param { dropout_ratio: 0.3 }")))
case("Dropout-out", make_net(layer("dr", "Dropout", param="dropout_param { dropout_ratio: 0.7 }")))

# ShuffleChannel: groups 1 (identity), 2, 3, all channels; 4-D and 2-D bottoms
for g, shape in ((1, (2, 6, 3, 4)), (2, (2, 6, 3, 4)), (3, (2, 6, 3, 4)), (6, (2, 6, 3, 4)), (3, (2, 12, 1, 1)),
                 (4, (3, 8))):
    case(f"ShuffleChannel-g{g}-{'x'.join(map(str, shape))}",
         make_net(layer("sh", "ShuffleChannel", param=f"shuffle_channel_param {{ group: {g} }}"), (("data", shape),)))
case("ShuffleChannel-default", make_net(layer("sh", "ShuffleChannel"), (DATA4,)))

# Tile: every axis, negative axes, the default axis, tiles 1
for axis, tiles in ((0, 2), (1, 3), (2, 2), (3, 4), (-1, 2), (-3, 2), (None, 2), (1, 1)):
    ax = "" if axis is None else f"axis: {axis} "
    case(f"Tile-axis{'default' if axis is None else axis}-x{tiles}",
         make_net(layer("t", "Tile", param=f"tile_param {{ {ax}tiles: {tiles} }}"), (DATA4,)))
case("Tile-2d", make_net(layer("t", "Tile", param="tile_param { tiles: 3 }"), (("data", (3, 4)),)))

# Silence: a Slice top nobody else reads, silenced; the other top goes on
case("Silence-slice", make_net(layer("sl", "Slice", tops=("s0", "s1"), param="slice_param { axis: 1 slice_point: 1 }")
                               + 'layer { name: "quiet" type: "Silence" bottom: "s1" }\n'
                               + layer("r", "ReLU", bottoms=("s0",)), (DATA4,)))
case("Silence-two-bottoms", make_net(layer("sl", "Slice", tops=("s0", "s1", "s2"), param="slice_param { axis: 1 }")
                                     + 'layer { name: "quiet" type: "Silence" bottom: "s0" bottom: "s2" }\n'
                                     + layer("r", "ReLU", bottoms=("s1",)), (("data", (2, 3, 4, 5)),)))

# BatchReindex: items picked, reordered and repeated along axis 0 by a 1-D index blob
for rid, n_idx, shape in (("4d", 5, (3, 2, 4, 5)), ("2d-fewer", 2, (4, 6)), ("1d", 4, (3,))):
    case(f"BatchReindex-{rid}", make_net(layer("ri", "BatchReindex", bottoms=("data", "idx")),
                                         (("data", shape), ("idx", (n_idx,)))),
         opts={"in_ints": {"idx": (0, shape[0])}})
