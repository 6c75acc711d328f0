"""Convolution and Deconvolution (2-D, NCHW), by im2col and one batched matmul per call; the forks' depthwise
convolution; Im2col."""
import numpy as np

from .call import canonical_axis
from .registry import register


def _pair(call, values, h, w, default, name):
    """Caffe's spatial-field rule: `name_h`/`name_w` win, else repeated field of 0, 1 or 2 values."""
    p = call.param.convolution_param
    has_h, has_w = p.HasField(h), p.HasField(w)
    if has_h or has_w:
        if len(values):
            raise call.error(f"give either {name} or {h}/{w}, not both")
        return getattr(p, h), getattr(p, w)
    if len(values) == 0:
        if default is None:
            raise call.error(f"{name} is required")
        return default, default
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise call.error(f"{name} has {len(values)} values; a 2-D convolution takes 1 or 2")


def geometry(call):
    """(kernel, stride, pad, dilation) as (h, w) pairs, plus group and num_output."""
    p = call.param.convolution_param
    kernel = _pair(call, p.kernel_size, "kernel_h", "kernel_w", None, "kernel_size")
    stride = _pair(call, p.stride, "stride_h", "stride_w", 1, "stride")
    pad = _pair(call, p.pad, "pad_h", "pad_w", 0, "pad")
    if len(p.dilation) > 2:
        raise call.error(f"dilation has {len(p.dilation)} values; a 2-D convolution takes 1 or 2")
    dilation = (1, 1) if not p.dilation else (p.dilation[0], p.dilation[-1])
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1:
        raise call.error(f"kernel, stride and dilation must be positive (got {kernel}, {stride}, {dilation})")
    if not p.HasField("num_output"):
        raise call.error("convolution_param.num_output is required")
    group = p.group
    return kernel, stride, pad, dilation, group, p.num_output


def _check_layout(call, x, channels_in, channels_out, group):
    p = call.param.convolution_param
    if x.ndim != 4:
        raise call.error(f"needs a 4-D NCHW bottom, got shape {list(x.shape)}")
    if canonical_axis(call, p.axis, x.ndim) != 1:
        raise call.error(f"only axis 1 (channels) is supported, got axis {p.axis}")
    if group < 1 or channels_in % group or channels_out % group:
        raise call.error(f"group {group} must divide both the input channels ({channels_in}) "
                         f"and num_output ({channels_out})")


def _padded(x, pad, fill=0.0, extra=(0, 0)):
    (ph, pw), (eh, ew) = pad, extra
    if not (ph or pw or eh or ew):
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph + eh), (pw, pw + ew)), constant_values=fill)


def window_views(xp, kernel, stride, dilation, out_hw):
    """Yield (i, j, view) for every kernel tap: view[..., y, x] = xp[..., y*s + i*d, x*s + j*d]."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
    for i in range(kh):
        for j in range(kw):
            y0, x0 = i * dh, j * dw
            yield i, j, xp[:, :, y0:y0 + sh * (oh - 1) + 1:sh, x0:x0 + sw * (ow - 1) + 1:sw]


def conv_out_size(size, k, s, p, d):
    return (size + 2 * p - (d * (k - 1) + 1)) // s + 1


def _checked(call):
    """The bottom, the geometry and bias_term of a (de)convolution, with its inputs and blob count checked."""
    call.expect_bottoms(1)
    x = call.bottoms[0]
    geo = geometry(call)
    _check_layout(call, x, x.shape[1], geo[5], geo[4])
    bias = call.param.convolution_param.bias_term
    call.expect_blobs(2 if bias else 1)
    return x, geo, bias


@register("Convolution")
def convolution(call):
    x, (kernel, stride, pad, dilation, group, cout), bias = _checked(call)
    n, cin, h, w = x.shape
    (kh, kw) = kernel
    w_ = call.blob(0, (cout, cin // group, kh, kw))
    oh, ow = (conv_out_size(h, kh, stride[0], pad[0], dilation[0]),
              conv_out_size(w, kw, stride[1], pad[1], dilation[1]))
    if oh < 1 or ow < 1:
        raise call.error(f"a {h}x{w} input is smaller than the dilated kernel: output would be {oh}x{ow}")
    if kernel == (1, 1) and stride == (1, 1) and pad == (0, 0):
        cols = x.reshape(n, group, cin // group, h * w)
    else:
        xp = _padded(x, pad)
        cols = np.empty((n, cin, kh, kw, oh, ow), dtype=x.dtype)
        for i, j, view in window_views(xp, kernel, stride, dilation, (oh, ow)):
            cols[:, :, i, j] = view
        cols = cols.reshape(n, group, (cin // group) * kh * kw, oh * ow)
    wg = w_.reshape(group, cout // group, -1)
    y = np.matmul(wg[None], cols).reshape(n, cout, oh, ow)
    if bias:
        y += call.blob(1, (cout,))[:, None, None]
    return [y]


@register("Deconvolution")
def deconvolution(call):
    """The transpose of Convolution: W^T x gives per-tap columns, scattered back (col2im)."""
    x, (kernel, stride, pad, dilation, group, cout), bias = _checked(call)
    n, cin, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    w_ = call.blob(0, (cin, cout // group, kh, kw))
    full_h, full_w = sh * (h - 1) + dh * (kh - 1) + 1, sw * (w - 1) + dw * (kw - 1) + 1
    oh, ow = full_h - 2 * pad[0], full_w - 2 * pad[1]
    if oh < 1 or ow < 1:
        raise call.error(f"output would be {oh}x{ow}: pad too large for this kernel and input")
    wg = w_.reshape(group, cin // group, -1).transpose(0, 2, 1)
    cols = np.matmul(wg[None], x.reshape(n, group, cin // group, h * w))
    cols = cols.reshape(n, cout, kh, kw, h, w)
    full = np.zeros((n, cout, full_h, full_w), dtype=cols.dtype)
    for i, j, view in window_views(full, kernel, stride, dilation, (h, w)):
        view += cols[:, :, i, j]
    y = full[:, :, pad[0]:pad[0] + oh, pad[1]:pad[1] + ow]
    if bias:
        y = y + call.blob(1, (cout,))[:, None, None]
    return [np.ascontiguousarray(y)]


def _window(call, p, h, w):
    """kernel, stride, pad, dilation and output size of a one-group-per-channel window layer
    (depthwise convolution, Im2col) over an h x w input."""
    kernel = _pair(call, p.kernel_size, "kernel_h", "kernel_w", None, "kernel_size")
    stride = _pair(call, p.stride, "stride_h", "stride_w", 1, "stride")
    pad = _pair(call, p.pad, "pad_h", "pad_w", 0, "pad")
    dilation = (1, 1) if not p.dilation else (p.dilation[0], p.dilation[-1])
    out = tuple(conv_out_size(size, k, s, pd, d) for size, k, s, pd, d in zip((h, w), kernel, stride, pad, dilation))
    if min(out) < 1:
        raise call.error(f"a {h}x{w} input is smaller than the dilated kernel: output would be {out[0]}x{out[1]}")
    return kernel, stride, pad, dilation, out


@register("ConvolutionDepthwise", "DepthwiseConvolution")
def depthwise_convolution(call):
    """The forks' depthwise convolution: channel c of the output is channel c of the input
    correlated with filter c (weights C x 1 x kh x kw), plus bias c. num_output and group,
    where given, must equal the channel count."""
    call.expect_bottoms(1)
    x, p = call.bottoms[0], call.param.convolution_param
    if x.ndim != 4:
        raise call.error(f"needs a 4-D NCHW bottom, got shape {list(x.shape)}")
    n, c, h, w = x.shape
    for field in ("num_output", "group"):
        if p.HasField(field) and getattr(p, field) != c:
            raise call.error(f"{field} {getattr(p, field)} differs from the {c} input channels")
    kernel, stride, pad, dilation, out = _window(call, p, h, w)
    call.expect_blobs(2 if p.bias_term else 1)
    weight = call.blob(0, (c, 1) + kernel)[:, 0]
    y = np.zeros((n, c) + out, dtype=x.dtype)
    for i, j, view in window_views(_padded(x, pad), kernel, stride, dilation, out):
        y += view * weight[:, i, j][:, None, None]
    if p.bias_term:
        y += call.blob(1, (c,))[:, None, None]
    return [y]


@register("Im2col")
def im2col(call):
    """Caffe's column buffer as a blob: channel (c * kh + i) * kw + j of the top holds tap (i, j)
    of channel c at every output position (zero where the tap falls in the padding)."""
    call.expect_bottoms(1)
    x, p = call.bottoms[0], call.param.convolution_param
    if x.ndim != 4:
        raise call.error(f"needs a 4-D NCHW bottom, got shape {list(x.shape)}")
    n, c, h, w = x.shape
    kernel, stride, pad, dilation, out = _window(call, p, h, w)
    cols = np.empty((n, c, kernel[0], kernel[1]) + out, dtype=x.dtype)
    for i, j, view in window_views(_padded(x, pad), kernel, stride, dilation, out):
        cols[:, :, i, j] = view
    return [cols.reshape(n, c * kernel[0] * kernel[1], *out)]
