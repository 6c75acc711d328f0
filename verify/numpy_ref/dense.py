"""InnerProduct: flatten from `axis`, multiply by the weight matrix, add the bias."""
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
