"""`--input-shape NAME=N,C,H,W`: a user's shapes for a net's inputs, parsed and checked.

The strings are parsed here, once, into {name: shape}; whether each name is an input of
the net is checked by `check_names` when the graph is built (graph.build_graph), where
the net's inputs are known: a wrong name is an error listing the inputs there are.
"""
import re

from .errors import UsageError

_SHAPE = re.compile(r"^\s*(?:(?P<name>[^=]+?)\s*=)?\s*(?P<dims>[^=]*?)\s*$")


def parse_input_shape(text, allow_bare=False):
    """`"data=1,3,224,224"` -> ("data", (1, 3, 224, 224)).

    With `allow_bare`, `"1,3,224,224"` is accepted too and gives (None, shape).
    """
    m = _SHAPE.match(text or "")
    if m is None or not m.group("dims"):
        raise UsageError(f"--input-shape takes NAME=N,C,H,W (e.g. data=1,3,224,224), not {text!r}")
    name, dims = m.group("name"), m.group("dims")
    try:
        shape = tuple(int(p.strip()) for p in dims.split(","))
    except ValueError:
        if name is None:
            raise UsageError(f"--input-shape takes NAME=N,C,H,W (e.g. data=1,3,224,224), not {text!r}") from None
        raise UsageError(f"--input-shape {text!r}: dimensions must be whole numbers separated by commas, "
                         f"as in {name.strip()}=1,3,224,224") from None
    if name is None and not allow_bare:
        raise UsageError(f"--input-shape {text!r}: name the input, as NAME=N,C,H,W (e.g. data={dims})")
    if any(d <= 0 for d in shape):
        raise UsageError(f"--input-shape {text!r}: every dimension must be at least 1")
    return (name.strip() if name is not None else None), shape


def parse_input_shapes(texts):
    """Several NAME=N,C,H,W strings -> {name: shape}; a name given twice is an error."""
    out = {}
    for text in texts or ():
        name, shape = parse_input_shape(text)
        if name in out:
            raise UsageError(f"--input-shape gives '{name}' twice ({_fmt(out[name])} and {_fmt(shape)})")
        out[name] = shape
    return out


def check_names(given, inputs, path=None):
    """UsageError unless every name in `given` is one of the net's `inputs` (names, in order)."""
    unknown = [n for n in given if n not in inputs]
    if unknown:
        where = f"{path}: " if path else ""
        have = ", ".join(f"'{n}'" for n in inputs) or "none"
        raise UsageError(f"{where}--input-shape names {', '.join(repr(n) for n in unknown)}, which "
                         f"{'is not an input' if len(unknown) == 1 else 'are not inputs'} of the net "
                         f"(its inputs: {have})")


def _fmt(shape):
    return ",".join(str(d) for d in shape)
