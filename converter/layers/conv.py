"""Convolution and Deconvolution (grouped, depthwise and dilated included), Im2col, and the forks'
depthwise convolution types."""
import numpy as np

from .base import INT32_MAX, LayerHandler, copy_param, int_fields, need_rank, pair_fields, register, spatial, zero_fields


def geometry_problems(p, what, counts=()):
    """Caffe's limits on a convolution_param's window (kernel, stride, pad, dilation; every
    layer that reads one), with `counts` (e.g. num_output) also required nonzero, and the 2-D
    restriction MXNet's emission has."""
    where = "convolution_param"
    problems = []
    if p.axis != 1:
        problems.append(f"convolution_param.axis {p.axis} (only 1 is supported)")
    if len(p.kernel_size) > 2 or len(p.stride) > 2 or len(p.pad) > 2 or len(p.dilation) > 2:
        problems.append(f"N-d {what} (more than 2 spatial dims) is not supported")
    for single, h, w in (("kernel_size", "kernel_h", "kernel_w"), ("stride", "stride_h", "stride_w"),
                         ("pad", "pad_h", "pad_w")):
        problems += pair_fields(p, where, single, h, w, repeated=True)
    window = ("kernel_size", "kernel_h", "kernel_w", "stride", "stride_h", "stride_w")
    problems += zero_fields(p, where, tuple(counts) + window + ("dilation",))
    problems += int_fields(p, where, tuple(counts) + window + ("pad", "pad_h", "pad_w", "dilation", "group"))
    if spatial(p, "kernel_size", "kernel_h", "kernel_w", repeated=True) is None:
        problems.append("kernel size is missing (kernel_size, or kernel_h and kernel_w)")
    return problems


def _conv_geometry(p):
    kernel = spatial(p, "kernel_size", "kernel_h", "kernel_w", repeated=True)
    stride = spatial(p, "stride", "stride_h", "stride_w", repeated=True, default=(1, 1))
    pad = spatial(p, "pad", "pad_h", "pad_w", repeated=True, default=(0, 0))
    dilation = spatial(p, "dilation", None, None, repeated=True, default=(1, 1))
    return kernel, stride, pad, dilation


def _check_int_range(*sizes):
    """Caffe computes padded sizes, kernel extents and strided spans in C int."""
    if max(sizes) > INT32_MAX:
        raise ValueError(f"a padded size, kernel extent or strided span of {max(sizes)} exceeds Caffe's int range")


def _he_normal(rng, shape, fan_in, gain=1.0):
    return (rng.standard_normal(shape) * gain * np.sqrt(2.0 / max(fan_in, 1))).astype(np.float32)


class _ConvBase(LayerHandler):
    blob_names = ("weight", "bias")
    init_gain = True

    def check(self, node):
        """Caffe's BaseConvolutionLayer::LayerSetUp limits, plus what MXNet needs (2-D, dilation >= 1)."""
        p = node.param.convolution_param
        problems = []
        if not p.HasField("num_output"):
            problems.append("convolution_param.num_output is missing")
        problems += geometry_problems(p, "convolution", counts=("num_output",))
        if p.group < 1:
            problems.append(f"convolution_param.group is {p.group}; it must be at least 1")
        elif p.HasField("num_output") and p.num_output % p.group:
            problems.append(f"num_output {p.num_output} is not divisible by group {p.group}")
        return problems

    def _check_input(self, node, in_shapes):
        need_rank(in_shapes[0], 4)
        c = in_shapes[0][1]
        g = node.param.convolution_param.group
        if c % g:
            raise ValueError(f"input channels {c} are not divisible by group {g}")

    def blob_shapes(self, node, in_shapes):
        p = node.param.convolution_param
        (kh, kw), _, _, _ = _conv_geometry(p)
        shapes = [self._weight_shape(p, in_shapes[0][1], kh, kw)]
        if p.bias_term:
            shapes.append((p.num_output,))
        return shapes

    def init_blobs(self, node, shapes, rng):
        w = shapes[0]
        if self.types[0] == "Deconvolution":
            fan_in = int(w[0] // node.param.convolution_param.group * w[2] * w[3])
        else:
            fan_in = int(np.prod(w[1:]))
        blobs = [_he_normal(rng, w, fan_in)]
        if len(shapes) > 1:
            blobs.append((rng.standard_normal(shapes[1]) * 0.05).astype(np.float32))
        return blobs

    def _emit_args(self, node, x_shape):
        p = node.param.convolution_param
        kernel, stride, pad, dilation = _conv_geometry(p)
        stride = self._effective_stride(stride, pad, x_shape)
        return dict(kernel=kernel, stride=stride, pad=pad, dilate=dilation, num_filter=p.num_output,
                    num_group=p.group, no_bias=not p.bias_term)

    def fold_affine(self, node, in_shapes, scale, shift):
        """Output channel o of the layer scaled by scale[o] and shifted by shift[o]: the weights
        feeding channel o are scaled, the bias becomes bias * scale + shift (float64)."""
        p = node.param.convolution_param
        w = np.asarray(node.blobs[0], np.float64)
        bias = np.asarray(node.blobs[1], np.float64).reshape(-1) if p.bias_term else np.zeros(p.num_output)
        w = w * self._out_channel_factor(p, w.shape, np.asarray(scale, np.float64))
        param = copy_param(node.param)
        param.convolution_param.bias_term = True
        return param, (w.astype(np.float32), (bias * scale + shift).astype(np.float32))

    def _params(self, node, em):
        """weight= and bias= variables for the MXNet op (bias left out without bias_term)."""
        blobs = em.blobs(node)
        params = {"weight": em.param("weight", blobs[0])}
        if node.param.convolution_param.bias_term:
            params["bias"] = em.param("bias", blobs[1])
        return params


@register
class Convolution(_ConvBase):
    types = ("Convolution",)
    mx_ops = ("Convolution",)
    notes = "2-D only (axis 1)"

    @staticmethod
    def _weight_shape(p, c_in, kh, kw):
        return (p.num_output, c_in // p.group, kh, kw)

    @staticmethod
    def _out_channel_factor(p, w_shape, scale):
        """Weights are (out, in/group, kh, kw): row o feeds output channel o."""
        return scale.reshape(-1, 1, 1, 1)

    @staticmethod
    def _effective_stride(stride, pad, x_shape):
        """A stride beyond the padded input leaves one window, as the padded size itself does;
        oneDNN overflows on strides near 2**31, so the equal, smaller one is emitted."""
        return tuple(min(s, size + 2 * p) for s, p, size in zip(stride, pad, x_shape[2:]))

    def output_shapes(self, node, in_shapes):
        self._check_input(node, in_shapes)
        p = node.param.convolution_param
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _conv_geometry(p)
        n, _, h, w = in_shapes[0]
        _check_int_range(h + 2 * ph, w + 2 * pw, dh * (kh - 1) + 1, dw * (kw - 1) + 1)
        oh = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
        ow = (w + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
        if oh <= 0 or ow <= 0:
            raise ValueError(f"kernel larger than the padded input {h}x{w}: output would be {oh}x{ow}")
        return [(n, p.num_output, oh, ow)]

    def emit(self, node, inputs, em):
        return [em.mx.Convolution(inputs[0], name=em.name(node), **self._params(node, em),
                                  **self._emit_args(node, em.in_shapes(node)[0]))]

    def macs(self, node, in_shapes, out_shapes):
        p = node.param.convolution_param
        (kh, kw), _, _, _ = _conv_geometry(p)
        return int(np.prod(out_shapes[0])) * (in_shapes[0][1] // p.group) * kh * kw

    def workspace(self, node, in_shapes, out_shapes):
        (kh, kw), _, _, _ = _conv_geometry(node.param.convolution_param)
        n, c, oh, ow = in_shapes[0][0], in_shapes[0][1], out_shapes[0][2], out_shapes[0][3]
        return n * c * kh * kw * oh * ow  # im2col columns


@register
class Deconvolution(_ConvBase):
    types = ("Deconvolution",)
    mx_ops = ("Deconvolution",)
    notes = "2-D only (axis 1)"

    @staticmethod
    def _weight_shape(p, c_in, kh, kw):
        return (c_in, p.num_output // p.group, kh, kw)

    @staticmethod
    def _out_channel_factor(p, w_shape, scale):
        """Weights are (in, out/group, kh, kw): entry [r, j] feeds output channel
        (r // (in/group)) * (out/group) + j."""
        c_in, per_group = w_shape[0], w_shape[1]
        group_of_row = np.arange(c_in) // (c_in // p.group)
        channel = group_of_row[:, None] * per_group + np.arange(per_group)[None, :]
        return scale[channel].reshape(c_in, per_group, 1, 1)

    @staticmethod
    def _effective_stride(stride, pad, x_shape):
        """Along an axis of size 1 the stride multiplies nothing: 1 is emitted (oneDNN
        overflows on strides near 2**31)."""
        return tuple(1 if size == 1 else s for s, size in zip(stride, x_shape[2:]))

    def output_shapes(self, node, in_shapes):
        self._check_input(node, in_shapes)
        p = node.param.convolution_param
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _conv_geometry(p)
        n, _, h, w = in_shapes[0]
        _check_int_range(dh * (kh - 1) + 1, dw * (kw - 1) + 1, sh * (h - 1), sw * (w - 1))
        oh = sh * (h - 1) + dh * (kh - 1) + 1 - 2 * ph
        ow = sw * (w - 1) + dw * (kw - 1) + 1 - 2 * pw
        if oh <= 0 or ow <= 0:
            raise ValueError(f"output would be {oh}x{ow}")
        return [(n, p.num_output, oh, ow)]

    def emit(self, node, inputs, em):
        return [em.mx.Deconvolution(inputs[0], name=em.name(node), **self._params(node, em),
                                    **self._emit_args(node, em.in_shapes(node)[0]))]

    def macs(self, node, in_shapes, out_shapes):
        p = node.param.convolution_param
        (kh, kw), _, _, _ = _conv_geometry(p)
        return int(np.prod(in_shapes[0])) * (p.num_output // p.group) * kh * kw

    def workspace(self, node, in_shapes, out_shapes):
        (kh, kw), (sh, sw), _, (dh, dw) = _conv_geometry(node.param.convolution_param)
        n, _, h, w = in_shapes[0]
        cout = out_shapes[0][1]
        full = n * cout * (sh * (h - 1) + dh * (kh - 1) + 1) * (sw * (w - 1) + dw * (kw - 1) + 1)
        return n * cout * kh * kw * h * w + full  # per-tap columns, then the uncropped output

@register
class ConvolutionDepthwise(Convolution):
    """The forks' depthwise convolution (`ConvolutionDepthwise`, `DepthwiseConvolution`): one
    filter per input channel, i.e. a grouped convolution with group = num_output = channels.
    Some forks ignore num_output and group (the output has the input's channels): a value other
    than the channel count is refused rather than guessed at."""

    types = ("ConvolutionDepthwise", "DepthwiseConvolution")
    notes = "group = num_output = input channels (either may be left out); 2-D only"

    def check(self, node):
        return geometry_problems(node.param.convolution_param, "convolution")

    @staticmethod
    def _channels(node, in_shapes):
        p = node.param.convolution_param
        if len(in_shapes[0]) != 4:
            raise ValueError(f"expects a 4-D input, got {list(in_shapes[0])}")
        c = in_shapes[0][1]
        if p.HasField("num_output") and p.num_output != c:
            raise ValueError(f"num_output {p.num_output} differs from the {c} input channels: a depthwise "
                             f"convolution keeps the channel count")
        if p.HasField("group") and p.group != c:
            raise ValueError(f"group {p.group} differs from the {c} input channels (depthwise: one group per channel)")
        return c

    def output_shapes(self, node, in_shapes):
        c = self._channels(node, in_shapes)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _conv_geometry(node.param.convolution_param)
        n, _, h, w = in_shapes[0]
        oh = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
        ow = (w + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
        if oh <= 0 or ow <= 0:
            raise ValueError(f"kernel larger than the padded input {h}x{w}: output would be {oh}x{ow}")
        return [(n, c, oh, ow)]

    def blob_shapes(self, node, in_shapes):
        c = self._channels(node, in_shapes)
        (kh, kw), _, _, _ = _conv_geometry(node.param.convolution_param)
        return [(c, 1, kh, kw)] + ([(c,)] if node.param.convolution_param.bias_term else [])

    def emit(self, node, inputs, em):
        c = em.in_shapes(node)[0][1]
        args = dict(self._emit_args(node, em.in_shapes(node)[0]), num_filter=c, num_group=c)
        return [em.mx.Convolution(inputs[0], name=em.name(node), **self._params(node, em), **args)]

    def macs(self, node, in_shapes, out_shapes):
        (kh, kw), _, _, _ = _conv_geometry(node.param.convolution_param)
        return int(np.prod(out_shapes[0])) * kh * kw


@register
class Im2col(LayerHandler):
    """BVLC Im2col: every kernel window as a column, top N x (C * kh * kw) x out_h x out_w, the
    channel index being (c * kh + i) * kw + j. Emitted as a grouped convolution with one-hot
    filters (group = C), which copies each tap exactly and exports as an ONNX Conv."""

    types = ("Im2col",)
    mx_ops = ("Convolution",)
    notes = "2-D only (axis 1)"

    def check(self, node):
        return geometry_problems(node.param.convolution_param, "im2col")

    def output_shapes(self, node, in_shapes):
        x = in_shapes[0]
        if len(x) != 4:
            raise ValueError(f"expects a 4-D input, got {list(x)}")
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _conv_geometry(node.param.convolution_param)
        oh = (x[2] + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
        ow = (x[3] + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
        if oh <= 0 or ow <= 0:
            raise ValueError(f"kernel larger than the padded input {x[2]}x{x[3]}: output would be {oh}x{ow}")
        return [(x[0], x[1] * kh * kw, oh, ow)]

    def emit(self, node, inputs, em):
        kernel, stride, pad, dilation = _conv_geometry(node.param.convolution_param)
        c = em.in_shapes(node)[0][1]
        taps = kernel[0] * kernel[1]
        one_hot = np.tile(np.eye(taps, dtype=np.float32).reshape(taps, 1, *kernel), (c, 1, 1, 1))
        return [em.mx.Convolution(inputs[0], weight=em.param("taps", one_hot), kernel=kernel, stride=stride, pad=pad,
                                  dilate=dilation, num_filter=c * taps, num_group=c, no_bias=True,
                                  name=em.name(node))]
