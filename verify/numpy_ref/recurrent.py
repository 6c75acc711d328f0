"""Caffe's RNN and LSTM (BVLC RecurrentLayer), step by step over time.

Bottoms: x (T x N x ...), cont (T x N), optional x_static (N x ...), and with expose_hidden
the initial states (1 x N x num_output: h0, then c0 for LSTM). Without expose_hidden the
initial states are zero: Caffe's first forward after loading (later forwards there start
from the previous call's last state, which a stateless reference cannot have).

RNN blobs: W_xh, b_h, [W_xh_static], W_hh, W_ho, b_o;
  h_t = tanh(W_xh x_t + b_h + W_hh (cont_t h_{t-1}) [+ W_xh_static x_static]),
  o_t = tanh(W_ho h_t + b_o); tops o [, h_T].
LSTM blobs: W_xc, b_c, [W_xc_static], W_hc, gate rows in i, f, o, g order;
  a_t = W_xc x_t + b_c + W_hc (cont_t h_{t-1}) [+ W_xc_static x_static],
  i, f, o = sigmoid, g = tanh; f' = 0 where cont_t == 0, else cont_t f (Caffe's LSTMUnit);
  c_t = f' c_{t-1} + i g, h_t = o tanh(c_t); tops h [, h_T, c_T].
"""
import numpy as np

from .registry import register


def _sigmoid(x):
    return 0.5 * np.tanh(0.5 * x) + 0.5


def _unpack(call, n_states):
    p = call.param.recurrent_param
    k = n_states if p.expose_hidden else 0
    call.expect_bottoms(2 + k, 3 + k)
    if p.num_output <= 0:
        raise call.error("recurrent_param.num_output must be positive")
    x, cont = call.bottoms[0], call.bottoms[1]
    if x.ndim < 2:
        raise call.error(f"x must be T x N x ..., got shape {list(x.shape)}")
    t, n = x.shape[:2]
    if cont.shape != (t, n):
        raise call.error(f"cont must be T x N = {[t, n]}, got shape {list(cont.shape)}")
    static = call.bottoms[2] if len(call.bottoms) == 3 + k else None
    if static is not None and (static.ndim < 1 or static.shape[0] != n):
        raise call.error(f"x_static must be N x ... with N = {n}, got shape {list(static.shape)}")
    h = p.num_output
    states = []
    for s in call.bottoms[len(call.bottoms) - k:]:
        if s.shape != (1, n, h):
            raise call.error(f"an initial state must be 1 x N x num_output = {[1, n, h]}, got {list(s.shape)}")
        states.append(s[0])
    while len(states) < n_states:
        states.append(np.zeros((n, h), x.dtype))
    xs = x.reshape(t, n, -1)
    static = None if static is None else static.reshape(n, -1)
    return xs, cont, static, states, h, bool(p.expose_hidden)


def _input_weights(call, rows, d, static):
    """W_x, b and (if static) W_static, then the index of the next blob."""
    wx = call.blob(0, (rows, d))
    b = call.blob(1, (rows,))
    if static is None:
        return wx, b, None, 2
    return wx, b, call.blob(2, (rows, static.shape[1])), 3


@register("LSTM")
def lstm(call):
    xs, cont, static, (h, c), size, expose = _unpack(call, 2)
    t_steps, _, d = xs.shape
    call.expect_blobs(4 if static is not None else 3)
    wx, b, ws, nxt = _input_weights(call, 4 * size, d, static)
    wh = call.blob(nxt, (4 * size, size))
    fixed = 0.0 if static is None else static @ ws.T
    outs = []
    for t in range(t_steps):
        k = cont[t][:, None]
        a = xs[t] @ wx.T + b + (k * h) @ wh.T + fixed
        i, f, o = (_sigmoid(a[:, j * size:(j + 1) * size]) for j in range(3))
        g = np.tanh(a[:, 3 * size:])
        f = np.where(k == 0, 0.0, k * f)
        c = f * c + i * g
        h = o * np.tanh(c)
        outs.append(h)
    return [np.stack(outs)] + ([h[None], c[None]] if expose else [])


@register("RNN")
def rnn(call):
    xs, cont, static, (h,), size, expose = _unpack(call, 1)
    t_steps, _, d = xs.shape
    call.expect_blobs(6 if static is not None else 5)
    wx, b, ws, nxt = _input_weights(call, size, d, static)
    wh = call.blob(nxt, (size, size))
    wo = call.blob(nxt + 1, (size, size))
    bo = call.blob(nxt + 2, (size,))
    fixed = 0.0 if static is None else static @ ws.T
    outs = []
    for t in range(t_steps):
        h = np.tanh(xs[t] @ wx.T + b + (cont[t][:, None] * h) @ wh.T + fixed)
        outs.append(np.tanh(h @ wo.T + bo))
    return [np.stack(outs)] + ([h[None]] if expose else [])
