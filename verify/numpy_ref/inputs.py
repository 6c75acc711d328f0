"""Input: the values fed to the net."""
from .registry import register


@register("Input")
def input_(call):
    missing = [t for t in call.node.tops if t not in call.feeds]
    if missing:
        raise call.error(f"no value fed for input(s) {missing}")
    return [call.feeds[t] for t in call.node.tops]
