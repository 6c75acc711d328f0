"""Layers that move data without arithmetic: Concat, Slice, Split, Flatten, Reshape, Crop, Dropout,
ShuffleChannel, Tile, BatchReindex, and Silence (which moves nothing)."""
import math

import numpy as np

from .base import LayerHandler, canonical_axis, register


def _axis(axis, shape, what="axis"):
    a = canonical_axis(axis, len(shape))
    if not 0 <= a < len(shape):
        raise ValueError(f"{what} {axis} is out of range for a {len(shape)}-D input")
    return a


def _concat_axis(node, shape):
    p = node.param.concat_param
    return _axis(p.concat_dim if p.HasField("concat_dim") and not p.HasField("axis") else p.axis, shape)


@register
class Concat(LayerHandler):
    types = ("Concat",)
    mx_ops = ("Concat", "_copy")
    n_bottoms = (1, 1 << 30)

    def output_shapes(self, node, in_shapes):
        axis = _concat_axis(node, in_shapes[0])
        for s in in_shapes[1:]:
            if len(s) != len(in_shapes[0]) or any(a != b for i, (a, b) in enumerate(zip(s, in_shapes[0])) if i != axis):
                raise ValueError("bottoms differ outside the concat axis: " + ", ".join(str(list(x)) for x in in_shapes))
        out = list(in_shapes[0])
        out[axis] = sum(s[axis] for s in in_shapes)
        return [tuple(out)]

    def identity(self, node, in_shapes):
        return len(in_shapes) == 1

    def emit(self, node, inputs, em):
        axis = _concat_axis(node, em.in_shapes(node)[0])
        if len(inputs) == 1:
            return [em.identity(inputs[0], em.name(node))]
        return [em.mx.concat(*inputs, dim=axis, name=em.name(node))]


def _slice_bounds(node, shape):
    p = node.param.slice_param
    axis = _axis(p.slice_dim if p.HasField("slice_dim") and not p.HasField("axis") else p.axis, shape)
    n, size = len(node.tops), shape[axis]
    points = list(p.slice_point)
    if points:
        if len(points) != n - 1:
            raise ValueError(f"{len(points)} slice points for {n} tops")
        edges = [0] + points + [size]
        if any(b <= a for a, b in zip(edges, edges[1:])):
            raise ValueError(f"slice points {points} are not increasing within 1..{size - 1}")
    else:
        if size % n:
            raise ValueError(f"axis size {size} does not split evenly into {n} tops")
        edges = [i * size // n for i in range(n + 1)]
    return axis, list(zip(edges, edges[1:]))


@register
class Slice(LayerHandler):
    types = ("Slice",)
    mx_ops = ("slice_axis",)
    n_tops = (1, 1 << 30)

    def output_shapes(self, node, in_shapes):
        axis, bounds = _slice_bounds(node, in_shapes[0])
        outs = []
        for a, b in bounds:
            s = list(in_shapes[0])
            s[axis] = b - a
            outs.append(tuple(s))
        return outs

    def emit(self, node, inputs, em):
        axis, bounds = _slice_bounds(node, em.in_shapes(node)[0])
        nm = em.name(node)
        return [em.mx.slice_axis(inputs[0], axis=axis, begin=a, end=b, name=nm if i == 0 else em.sub(str(i)))
                for i, (a, b) in enumerate(bounds)]


@register
class Split(LayerHandler):
    """Copies of the bottom; the tops share the bottom's MXNet output."""

    types = ("Split",)
    notes = "tops share the bottom"
    n_tops = (1, 1 << 30)

    def output_shapes(self, node, in_shapes):
        return [in_shapes[0]] * len(node.tops)

    def identity(self, node, in_shapes):
        return True

    def emit(self, node, inputs, em):
        return [inputs[0]] * len(node.tops)


def _reshape_code(in_shape, out_shape):
    """MXNet reshape target keeping the batch dimension dynamic when it passes through."""
    if out_shape and in_shape and out_shape[0] == in_shape[0]:
        return (0,) + tuple(out_shape[1:])
    return tuple(out_shape)


@register
class Flatten(LayerHandler):
    types = ("Flatten",)
    mx_ops = ("Reshape",)

    def output_shapes(self, node, in_shapes):
        x = in_shapes[0]
        p = node.param.flatten_param
        a, e = _axis(p.axis, x), _axis(p.end_axis, x, "end_axis")
        if e < a:
            raise ValueError(f"end_axis {p.end_axis} comes before axis {p.axis}")
        return [tuple(x[:a]) + (math.prod(x[a:e + 1]),) + tuple(x[e + 1:])]

    def emit(self, node, inputs, em):
        shape = _reshape_code(em.in_shapes(node)[0], em.out_shapes(node)[0])
        return [em.mx.reshape(inputs[0], shape=shape, name=em.name(node))]


@register
class Reshape(LayerHandler):
    types = ("Reshape",)
    mx_ops = ("Reshape",)

    def check(self, node):
        """Caffe's ReshapeLayer limits: dims are -1 (inferred, once), 0 (copied) or positive."""
        p = node.param.reshape_param
        spec = [int(d) for d in p.shape.dim]
        problems = [f"reshape_param.shape dim {d} (a dim is -1, 0 or positive)" for d in spec if d < -1][:1]
        if spec.count(-1) > 1:
            problems.append("at most one -1 in reshape_param.shape")
        if p.num_axes < -1:
            problems.append(f"reshape_param.num_axes {p.num_axes} must be -1 (to the last axis) or at least 0")
        return problems

    def output_shapes(self, node, in_shapes):
        x = list(in_shapes[0])
        p = node.param.reshape_param
        spec = [int(d) for d in p.shape.dim]
        start = canonical_axis(p.axis, len(x) + 1) if p.axis < 0 else p.axis
        end = len(x) if p.num_axes == -1 else start + p.num_axes
        if not 0 <= start <= end <= len(x):
            raise ValueError(f"axis {p.axis} / num_axes {p.num_axes} out of range for {x}")
        if spec.count(-1) > 1 or any(d < -1 for d in spec):
            raise ValueError(f"reshape_param.shape {spec}: dims are -1 (once), 0 or positive")
        middle = []
        for i, d in enumerate(spec):
            if d == 0:
                if start + i >= len(x):
                    raise ValueError(f"0 at position {i} copies a dimension the input does not have")
                middle.append(x[start + i])
            else:
                middle.append(d)
        out = x[:start] + middle + x[end:]
        total = math.prod(x)
        if -1 in out:
            known = math.prod(d for d in out if d != -1)
            if known == 0 or total % known:
                raise ValueError(f"cannot infer -1: {total} values into {out}")
            out[out.index(-1)] = total // known
        if math.prod(out) != total:
            raise ValueError(f"reshape of {x} ({total} values) into {out}")
        return [tuple(out)]

    def emit(self, node, inputs, em):
        shape = _reshape_code(em.in_shapes(node)[0], em.out_shapes(node)[0])
        return [em.mx.reshape(inputs[0], shape=shape, name=em.name(node))]


def _crop_offsets(node, in_shapes):
    x, ref = in_shapes
    if len(x) != len(ref):
        raise ValueError(f"the bottoms differ in rank: {list(x)} and {list(ref)} (Caffe crops axes of equal rank)")
    p = node.param.crop_param
    axis = _axis(p.axis, x)
    offs = list(p.offset)
    n = len(x) - axis
    if len(offs) not in (0, 1, n):
        raise ValueError(f"{len(offs)} offsets for {n} cropped axes")
    offs = [0] * n if not offs else (offs * n if len(offs) == 1 else offs)
    begin, end = [], []
    for i in range(len(x)):
        if i < axis:
            begin.append(None)
            end.append(None)
            continue
        o = offs[i - axis]
        if o + ref[i] > x[i]:
            raise ValueError(f"offset {o} + size {ref[i]} exceeds dimension {i} of size {x[i]}")
        begin.append(o)
        end.append(o + ref[i])
    return axis, begin, end


@register
class Crop(LayerHandler):
    types = ("Crop",)
    mx_ops = ("slice",)
    n_bottoms = (2, 2)

    def output_shapes(self, node, in_shapes):
        axis, _, _ = _crop_offsets(node, in_shapes)
        return [tuple(in_shapes[0][:axis]) + tuple(in_shapes[1][axis:])]

    def emit(self, node, inputs, em):
        _, begin, end = _crop_offsets(node, em.in_shapes(node))
        return [em.mx.slice(inputs[0], begin=tuple(begin), end=tuple(end), name=em.name(node))]


@register
class Dropout(LayerHandler):
    """Identity at test time (Caffe scales while training instead)."""

    types = ("Dropout",)
    notes = "identity (TEST phase)"
    mx_ops = ("_copy",)

    def identity(self, node, in_shapes):
        return True

    def emit(self, node, inputs, em):
        return [em.identity(inputs[0], em.name(node))]


@register
class ShuffleChannel(LayerHandler):
    """ShuffleNet's channel shuffle: channels seen as a group x (C / group) matrix, transposed.
    Output channel j * group + i is input channel i * (C / group) + j."""

    types = ("ShuffleChannel",)
    mx_ops = ("Reshape", "transpose")

    def check(self, node):
        g = node.param.shuffle_channel_param.group
        return [] if g > 0 else [f"shuffle_channel_param.group {g} must be positive"]

    def output_shapes(self, node, in_shapes):
        x = in_shapes[0]
        g = node.param.shuffle_channel_param.group
        if len(x) < 2 or x[1] % g:
            raise ValueError(f"{x[1] if len(x) > 1 else 'no'} channels do not split into {g} groups")
        return [x]

    def emit(self, node, inputs, em):
        x_shape = em.in_shapes(node)[0]
        g = node.param.shuffle_channel_param.group
        mx = em.mx
        grid = mx.reshape(inputs[0], shape=(0, g, x_shape[1] // g, -1), name=em.sub("groups"))
        swapped = mx.transpose(grid, axes=(0, 2, 1, 3), name=em.sub("swap"))
        return [mx.reshape(swapped, shape=_reshape_code(x_shape, x_shape), name=em.name(node))]


def _tile_axis(node, shape):
    return _axis(node.param.tile_param.axis, shape)


@register
class Tile(LayerHandler):
    """The whole block from `axis` on repeated `tiles` times along `axis` (np.tile, not np.repeat)."""

    types = ("Tile",)
    mx_ops = ("tile", "_copy")

    def check(self, node):
        p = node.param.tile_param
        if not p.HasField("tiles"):
            return ["tile_param.tiles is required"]
        return [] if p.tiles > 0 else [f"tile_param.tiles {p.tiles} must be positive"]

    def output_shapes(self, node, in_shapes):
        out = list(in_shapes[0])
        axis = _tile_axis(node, out)
        out[axis] *= node.param.tile_param.tiles
        return [tuple(out)]

    def emit(self, node, inputs, em):
        x_shape = em.in_shapes(node)[0]
        axis = _tile_axis(node, x_shape)
        tiles = node.param.tile_param.tiles
        if tiles == 1:
            return [em.identity(inputs[0], em.name(node))]
        reps = tuple(tiles if a == axis else 1 for a in range(len(x_shape)))
        return [em.mx.tile(inputs[0], reps=reps, name=em.name(node))]


@register
class Silence(LayerHandler):
    """Reads its bottoms and computes nothing: no top, no MXNet node (Caffe still holds the
    bottoms, which MXNet prunes when nothing else reads them)."""

    types = ("Silence",)
    notes = "no top; nothing emitted"
    n_bottoms = (1, 1 << 30)
    n_tops = (0, 0)

    def output_shapes(self, node, in_shapes):
        return []

    def emit(self, node, inputs, em):
        return []


@register
class BatchReindex(LayerHandler):
    """Items of bottom 0 picked along axis 0 by the float indices of the 1-D bottom 1 (in any
    order, repeats allowed). Caffe requires 0 <= index < N; MXNet clips to that range."""

    types = ("BatchReindex",)
    n_bottoms = (2, 2)
    mx_ops = ("take",)
    notes = "indices outside [0, N) are clipped (Caffe refuses them)"

    def output_shapes(self, node, in_shapes):
        x, index = in_shapes
        if len(index) != 1:
            raise ValueError(f"the index bottom must be 1-D, got {list(index)}")
        return [tuple(index) + tuple(x[1:])]

    def emit(self, node, inputs, em):
        return [em.mx.take(inputs[0], inputs[1], axis=0, mode="clip", name=em.name(node))]
