"""InnerProduct: flatten from `axis`, multiply by the weight matrix, add the bias; Embed."""
import numpy as np

from .call import canonical_axis
from .registry import register


@register("InnerProduct")
def inner_product(call):
    """Flattens from `axis` on; weights (num_output, K), or (K, num_output) with transpose."""
    call.expect_bottoms(1)
    x, p = call.bottoms[0], call.param.inner_product_param
    if not p.HasField("num_output"):
        raise call.error("inner_product_param.num_output is required")
    axis = canonical_axis(call, p.axis, x.ndim)
    n_out = p.num_output
    k = int(np.prod(x.shape[axis:]))
    call.expect_blobs(2 if p.bias_term else 1)
    w = call.blob(0, (k, n_out) if p.transpose else (n_out, k))
    flat = x.reshape(int(np.prod(x.shape[:axis])), k)
    y = flat @ (w if p.transpose else w.T)
    if p.bias_term:
        y = y + call.blob(1, (n_out,))
    return [y.reshape(x.shape[:axis] + (n_out,))]


@register("Embed")
def embed(call):
    """top[..., :] = W[int(index)] (+ b) for every index in the bottom; Caffe casts each index
    to int (truncation) and requires 0 <= index < input_dim."""
    call.expect_bottoms(1)
    x, p = call.bottoms[0], call.param.embed_param
    if not p.num_output or not p.input_dim:
        raise call.error("embed_param needs num_output and input_dim")
    call.expect_blobs(2 if p.bias_term else 1)
    table = call.blob(0, (p.input_dim, p.num_output))
    index = np.trunc(x).astype(np.int64)
    bad = (index < 0) | (index >= p.input_dim)
    if bad.any():
        raise call.error(f"{int(bad.sum())} index value(s) outside [0, {p.input_dim}) (e.g. {x[bad].flat[0]:g}), "
                         f"which Caffe does not define")
    y = table[index]
    if p.bias_term:
        y = y + call.blob(1, (p.num_output,))
    return [y]
