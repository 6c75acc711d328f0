"""Sweep cases: RNN and LSTM (Caffe's recurrent layers).

`cont` comes either straight from a random input (real-valued: Caffe scales the state by it)
or from a fixed 0/1 pattern built in the net (_fixed.py), where a 0 after t = 0 restarts a
stream mid-sequence. With expose_hidden the initial states are random inputs.
"""
from . import case, layer, make_net
from ._fixed import fixed_blob

RESET = [[0, 0], [1, 0], [1, 1]]  # stream 1 restarts at t = 1 (the golden *_reset pattern)
RESET_EXPOSED = [[1, 0], [1, 1], [0, 1], [1, 1]]  # h0 used by stream 0 only; stream 0 restarts at t = 2


def _net(type_, *, x, cont=None, static=None, states=(), h=5, expose=False):
    """x: shape; cont: None (random input, T x N) or a 0/1 pattern; static: shape or None."""
    t, n = x[:2]
    inputs = [("x", x)]
    text = ""
    if cont is None:
        inputs.append(("cont", (t, n)))
        cont_blob = "cont"
    else:
        inputs.append(("c", (t, n)))
        text += fixed_blob("c", "cont", cont, (0, 1))
        cont_blob = "cont"
    bottoms = ["x", cont_blob]
    if static is not None:
        inputs.append(("xs", static))
        bottoms.append("xs")
    for s in states:
        inputs.append((s, (1, n, h)))
        bottoms.append(s)
    tops = ["y"] + ([f"{s}_T" for s in states] if expose else [])
    param = f"recurrent_param {{ num_output: {h} {'expose_hidden: true' if expose else ''} }}"
    text += layer("rec", type_, bottoms=bottoms, tops=tops, param=param)
    return make_net(text, inputs)


for type_, states in (("RNN", ("h0",)), ("LSTM", ("h0", "c0"))):
    k = type_
    case(f"{k}-cont-random", _net(type_, x=(3, 2, 4)))
    case(f"{k}-reset", _net(type_, x=(3, 2, 4), cont=RESET))
    case(f"{k}-x4d", _net(type_, x=(3, 2, 2, 3), cont=RESET, h=3))
    case(f"{k}-x2d", _net(type_, x=(3, 2), cont=RESET, h=4))
    case(f"{k}-T1", _net(type_, x=(1, 3, 4)))  # h0 = 0: cont has no effect (not in the MXNet graph)
    case(f"{k}-static", _net(type_, x=(3, 2, 4), cont=RESET, static=(2, 2, 3)))
    case(f"{k}-expose", _net(type_, x=(4, 2, 3), cont=RESET_EXPOSED, states=states, expose=True))
    case(f"{k}-expose-T1", _net(type_, x=(1, 2, 3), states=states, expose=True, h=4))
    case(f"{k}-static-expose", _net(type_, x=(4, 2, 3), cont=RESET_EXPOSED, static=(2, 6), states=states,
                                    expose=True))
    case(f"{k}-long", _net(type_, x=(6, 3, 5), cont=[[0, 0, 0], [1, 1, 0], [1, 1, 1], [0, 1, 1], [1, 0, 1],
                                                      [1, 1, 1]], h=7))
