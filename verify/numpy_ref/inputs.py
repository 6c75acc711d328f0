"""Input: the values fed to the net; Parameter: a learned blob as a top."""
from .registry import register


@register("Input")
def input_(call):
    missing = [t for t in call.node.tops if t not in call.feeds]
    if missing:
        raise call.error(f"no value fed for input(s) {missing}")
    return [call.feeds[t] for t in call.node.tops]


@register("Parameter")
def parameter(call):
    call.expect_bottoms(0)
    shape = tuple(int(d) for d in call.param.parameter_param.shape.dim)
    call.expect_blobs(1)
    return [call.blob(0, shape).copy()]
