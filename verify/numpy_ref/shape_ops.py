"""Layers that only move data: Split, Dropout (test phase), Concat, Slice, Flatten,
Reshape, Crop, ShuffleChannel, Tile, BatchReindex; and Silence, which moves nothing. Outputs may share
memory with inputs; nothing here writes in place."""
import numpy as np

from .call import canonical_axis
from .registry import register


@register("Split")
def split(call):
    call.expect_bottoms(1)
    return [call.bottoms[0]] * len(call.node.tops)


@register("Dropout")
def dropout(call):
    """Identity in the TEST phase (Caffe scales by 1/(1-ratio) while training instead)."""
    call.expect_bottoms(1)
    return [call.bottoms[0]]


def _axis_field(call, p, legacy_name):
    """Caffe prefers the legacy concat_dim/slice_dim field when it is set explicitly."""
    if p.HasField(legacy_name):
        if p.HasField("axis"):
            raise call.error(f"give either axis or {legacy_name}, not both")
        return getattr(p, legacy_name)
    return p.axis


@register("Concat")
def concat(call):
    xs = call.bottoms
    if not xs:
        raise call.error("needs at least one bottom")
    axis = canonical_axis(call, _axis_field(call, call.param.concat_param, "concat_dim"), xs[0].ndim)
    for x in xs[1:]:
        if x.ndim != xs[0].ndim or any(a != b for i, (a, b) in enumerate(zip(x.shape, xs[0].shape)) if i != axis):
            raise call.error(f"bottom shapes {[list(x.shape) for x in xs]} differ outside axis {axis}")
    return [np.concatenate(xs, axis=axis)]


@register("Slice")
def slice_(call):
    call.expect_bottoms(1)
    x, p, n_top = call.bottoms[0], call.param.slice_param, len(call.node.tops)
    axis = canonical_axis(call, _axis_field(call, p, "slice_dim"), x.ndim)
    size = x.shape[axis]
    if p.slice_point:
        points = list(p.slice_point)
        if len(points) != n_top - 1:
            raise call.error(f"{len(points)} slice points need {len(points) + 1} tops, got {n_top}")
        if any(b <= a for a, b in zip([0] + points, points + [size])):
            raise call.error(f"slice points {points} must increase strictly within (0, {size})")
    else:
        if size % n_top:
            raise call.error(f"axis {axis} of size {size} does not split evenly into {n_top} tops")
        points = [size // n_top * i for i in range(1, n_top)]
    return np.split(x, points, axis=axis)


@register("Flatten")
def flatten(call):
    call.expect_bottoms(1)
    x, p = call.bottoms[0], call.param.flatten_param
    start = canonical_axis(call, p.axis, x.ndim)
    end = canonical_axis(call, p.end_axis, x.ndim, "end_axis")
    if end < start:
        raise call.error(f"end_axis {p.end_axis} comes before axis {p.axis}")
    return [x.reshape(x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:])]


@register("Reshape")
def reshape(call):
    """Replace dims [axis, axis + num_axes) by `shape`; 0 copies a bottom dim, one -1 is inferred."""
    call.expect_bottoms(1)
    x, p = call.bottoms[0], call.param.reshape_param
    ndim = x.ndim
    start = p.axis + ndim + 1 if p.axis < 0 else p.axis
    if not 0 <= start <= ndim:
        raise call.error(f"axis {p.axis} is out of range for a {ndim}-D bottom")
    if p.num_axes < -1:
        raise call.error(f"num_axes must be >= -1, got {p.num_axes}")
    end = ndim if p.num_axes == -1 else start + p.num_axes
    if end > ndim:
        raise call.error(f"axis {start} + num_axes {p.num_axes} exceeds the bottom's {ndim} dims")
    dims = list(p.shape.dim)
    if dims.count(-1) > 1:
        raise call.error("at most one -1 in reshape_param.shape")
    new = []
    for i, d in enumerate(dims):
        if d == 0:
            if start + i >= ndim:
                raise call.error(f"shape dim {i} is 0 (copy) but the bottom has no axis {start + i}")
            new.append(x.shape[start + i])
        elif d < -1:
            raise call.error(f"shape dim {i} is {d}")
        else:
            new.append(d)
    full = list(x.shape[:start]) + new + list(x.shape[end:])
    if -1 in full:
        known = int(np.prod([d for d in full if d != -1]))
        if known == 0 or x.size % known:
            raise call.error(f"cannot infer -1: {x.size} values do not divide into {full}")
        full[full.index(-1)] = x.size // known
    if int(np.prod(full)) != x.size:
        raise call.error(f"shape {full} holds {int(np.prod(full))} values, the bottom {x.size}")
    return [x.reshape(full)]


@register("Crop")
def crop(call):
    """Crop bottom 0 to bottom 1's dims from `axis` on, starting at the given offsets."""
    call.expect_bottoms(2)
    x, ref, p = call.bottoms[0], call.bottoms[1], call.param.crop_param
    if x.ndim != ref.ndim:
        raise call.error(f"bottoms have {x.ndim} and {ref.ndim} dims")
    axis = canonical_axis(call, p.axis, x.ndim)
    n = x.ndim - axis
    offsets = list(p.offset)
    if len(offsets) not in (0, 1, n):
        raise call.error(f"{len(offsets)} offsets for {n} cropped axes: give 0, 1 or {n}")
    offsets = offsets * n if len(offsets) == 1 else (offsets or [0] * n)
    index = [slice(None)] * axis
    for i, off in enumerate(offsets):
        a = axis + i
        if off + ref.shape[a] > x.shape[a]:
            raise call.error(f"axis {a}: offset {off} + size {ref.shape[a]} exceeds {x.shape[a]}")
        index.append(slice(off, off + ref.shape[a]))
    return [x[tuple(index)]]


@register("ShuffleChannel")
def shuffle_channel(call):
    """Output channel j * group + i takes input channel i * (C / group) + j."""
    call.expect_bottoms(1)
    x, g = call.bottoms[0], call.param.shuffle_channel_param.group
    if x.ndim < 2 or g < 1 or x.shape[1] % g:
        raise call.error(f"channels of {list(x.shape)} do not split into {g} groups")
    per = x.shape[1] // g
    out = np.empty_like(x)
    for i in range(g):
        for j in range(per):
            out[:, j * g + i] = x[:, i * per + j]
    return [out]


@register("Tile")
def tile(call):
    """The block from `axis` on, copied `tiles` times one after another along `axis`."""
    call.expect_bottoms(1)
    x, p = call.bottoms[0], call.param.tile_param
    if not p.HasField("tiles") or p.tiles < 1:
        raise call.error("tile_param.tiles must be given and positive")
    axis = canonical_axis(call, p.axis, x.ndim)
    return [np.concatenate([x] * p.tiles, axis=axis)]


@register("Silence")
def silence(call):
    return []


@register("BatchReindex")
def batch_reindex(call):
    """top[i] = bottom0[int(bottom1[i])]; Caffe checks 0 <= index < N."""
    call.expect_bottoms(2)
    x, index = call.bottoms
    if index.ndim != 1:
        raise call.error(f"the index bottom must be 1-D, got {list(index.shape)}")
    picks = index.astype(np.int64)
    if picks.size and (picks.min() < 0 or picks.max() >= x.shape[0]):
        raise call.error(f"indices {sorted(set(picks.tolist()))} fall outside [0, {x.shape[0]})")
    return [x[picks]]
