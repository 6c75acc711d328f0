"""Blobs with exact, chosen values built from layers, for sweep cases whose inputs must not be
random: unpooling masks (integer indices, with ties) and RNN/LSTM `cont` (0/1 resets).

The sweep harness draws every net input at random, so a chosen pattern is made inside the
net: slice a random blob into single elements along two axes, turn each into a constant
with Power (power 1, scale 0, shift v: exactly v), and concatenate them back.
"""
from . import layer


def fixed_blob(src, name, pattern, axes):
    """Layers giving blob `name` the shape of blob `src` and the 2-D `pattern` over `axes`
    (constant along the other axes). Layer and blob names are prefixed with `name`."""
    a0, a1 = axes
    rows = len(pattern)
    cols = len(pattern[0])
    text = []

    def split(blob, axis, n, prefix):
        if n == 1:
            return [blob]
        tops = [f"{prefix}_{i}" for i in range(n)]
        text.append(layer(f"{prefix}_slice", "Slice", bottoms=(blob,), tops=tops,
                          param=f"slice_param {{ axis: {axis} }}"))
        return tops

    def join(blobs, axis, top):
        text.append(layer(f"{top}_cat", "Concat", bottoms=blobs, tops=(top,), param=f"concat_param {{ axis: {axis} }}"))
        return top

    row_blobs = []
    for r, row_src in enumerate(split(src, a0, rows, f"{name}_r")):
        cells = []
        for c, cell in enumerate(split(row_src, a1, cols, f"{name}_r{r}c")):
            top = f"{name}_v{r}_{c}"
            text.append(layer(top, "Power", bottoms=(cell,), tops=(top,),
                              param=f"power_param {{ power: 1 scale: 0 shift: {float(pattern[r][c])} }}"))
            cells.append(top)
        row_blobs.append(join(cells, a1, f"{name}_row{r}") if len(cells) > 1 else cells[0])
    if len(row_blobs) == 1:
        text.append(layer(f"{name}_out", "Power", bottoms=row_blobs, tops=(name,)))  # identity: power 1, scale 1
    else:
        join(row_blobs, a0, name)
    return "".join(text)
