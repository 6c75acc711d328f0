"""Caffe's recurrent layers, RNN and LSTM, unrolled over time into MXNet ops.

Caffe runs these as an unrolled net of T steps over bottoms x (T x N x ...), cont (T x N),
an optional static input x_static (N x ...) and, with expose_hidden, the initial states
(1 x N x num_output: h0, and c0 for LSTM), whose last values become extra tops. At step t
the previous state is multiplied by cont_t, so cont_t = 0 starts a new sequence for that
stream (any real cont_t scales the state). The blobs, in Caffe's order, and the gate rows
(i, f, o, g) are the ones BVLC's FillUnrolledNet creates.

MXNet's fused `RNN` operator has no such per-step, per-stream reset, and cont is a net
input whose values are unknown at conversion, so the fused op could differ from Caffe on
any batch that restarts a sequence after t = 0. The layer is therefore always unrolled
(T is fixed by the input shape): one FullyConnected over all time steps for x, then per
step a FullyConnected of the cont-scaled state plus the gate arithmetic. This expresses
every Caffe form exactly, N stays free (batch-agnostic reshapes).

One Caffe behaviour has no stateless equivalent: without expose_hidden, Caffe copies the
last state of one forward() into the first state of the next (so cont_0 = 1 continues a
sequence across calls). A converted model starts every forward from zero state, which is
Caffe's first forward after loading; use expose_hidden to carry state between calls.
"""
import numpy as np

from .base import LayerHandler, register


def layout(node, in_shapes, n_states):
    """(T, N, D, static width or None, expose) with Caffe's checks, for RNN (1 state) or LSTM (2)."""
    p = node.param.recurrent_param
    expose = bool(p.expose_hidden)
    k = n_states if expose else 0
    if len(in_shapes) not in (2 + k, 3 + k):
        states = f" and {k} initial state(s) (expose_hidden)" if expose else ""
        raise ValueError(f"takes x, cont, an optional x_static{states}: {2 + k} or {3 + k} bottoms, "
                         f"got {len(in_shapes)}")
    x, cont = in_shapes[0], in_shapes[1]
    if len(x) < 2:
        raise ValueError(f"x must have at least 2 axes (T, N, ...), got {list(x)}")
    t, n = x[0], x[1]
    if tuple(cont) != (t, n):
        raise ValueError(f"cont must be T x N = {[t, n]} (2 axes), got {list(cont)}")
    static = None
    if len(in_shapes) == 3 + k:
        s = in_shapes[2]
        if len(s) < 1 or s[0] != n:
            raise ValueError(f"x_static must be N x ... with N = {n}, got {list(s)}")
        static = int(np.prod(s[1:]))
    hidden = (1, n, p.num_output)
    for i, s in enumerate(in_shapes[len(in_shapes) - k:]):
        if tuple(s) != hidden:
            raise ValueError(f"initial state bottom {len(in_shapes) - k + i} must be 1 x N x num_output = "
                             f"{list(hidden)}, got {list(s)}")
    return t, n, int(np.prod(x[2:])), static, expose


class _Recurrent(LayerHandler):
    n_states = 1
    gates = 1  # blocks of num_output rows in the input weight
    init_gain = False

    def check(self, node):
        p = node.param.recurrent_param
        problems = []
        if p.num_output <= 0:
            problems.append("recurrent_param.num_output must be positive")
        want = 1 + (self.n_states if p.expose_hidden else 0)
        if len(node.tops) != want:
            problems.append(f"produces {want} top(s) with expose_hidden {'on' if p.expose_hidden else 'off'}, "
                            f"got {len(node.tops)}")
        return problems

    def output_shapes(self, node, in_shapes):
        t, n, _, _, expose = layout(node, in_shapes, self.n_states)
        h = node.param.recurrent_param.num_output
        return [(t, n, h)] + [(1, n, h)] * (self.n_states if expose else 0)

    def blob_shapes(self, node, in_shapes):
        _, _, d, static, _ = layout(node, in_shapes, self.n_states)
        h = node.param.recurrent_param.num_output
        g = self.gates * h
        shapes = [(g, d), (g,)] + ([(g, static)] if static is not None else []) + [(g, h)]
        return shapes + self.extra_blob_shapes(h)

    def extra_blob_shapes(self, h):
        return []

    def init_blobs(self, node, shapes, rng):
        """Weights N(0, 1/fan_in) (fan_in: the columns), biases N(0, 0.2^2), as Caffe's golden cases draw them."""
        return [(rng.standard_normal(s) * (np.sqrt(1.0 / s[1]) if len(s) == 2 else 0.2)).astype(np.float32)
                for s in shapes]

    def sample_blobs(self, node, shapes, rng, options):
        return self.init_blobs(node, shapes, rng)

    def macs(self, node, in_shapes, out_shapes):
        t, n, d, static, _ = layout(node, in_shapes, self.n_states)
        h = node.param.recurrent_param.num_output
        g = self.gates * h
        return t * n * g * (d + h) + n * g * (static or 0) + t * n * self.output_macs_per_step(h)

    def output_macs_per_step(self, h):
        return 0

    # -- emission ------------------------------------------------------------------------------
    def emit(self, node, inputs, em):
        mx = em.mx
        ins = em.in_shapes(node)
        t_steps, _, _, static, expose = layout(node, ins, self.n_states)
        h = node.param.recurrent_param.num_output
        g = self.gates * h
        if not expose:
            em.adjust(node, "every forward starts from zero state, as Caffe's first forward does; Caffe's later "
                            "forwards continue from the previous call's last state (where cont_0 = 1), which a "
                            "converted model does only with expose_hidden (state in and out as blobs)")
        blobs = em.blobs(node)
        names = self.blob_names_for(static is not None)
        w = dict(zip(names, blobs))
        x = inputs[0]
        if len(ins[0]) != 3:
            x = mx.reshape(x, shape=(0, 0, -1), name=em.sub("x3"))
        x_proj = mx.FullyConnected(x, weight=em.param(names[0], w[names[0]]), bias=em.param(names[1], w[names[1]]),
                                   num_hidden=g, flatten=False, name=em.sub("x_transform"))
        static_proj = None
        if static is not None:
            static_proj = mx.FullyConnected(inputs[2], weight=em.param(names[2], w[names[2]]), num_hidden=g,
                                            no_bias=True, flatten=True, name=em.sub("x_static_transform"))
        w_hidden = []  # made on first use: with T = 1 and no exposed state it is never read
        states = None
        if expose:
            states = [mx.reshape(s, shape=(-1, h), name=em.sub(f"{label}0"))
                      for s, label in zip(inputs[len(inputs) - self.n_states:], self.state_labels)]
        outs = []
        for t in range(t_steps):
            xt = mx.reshape(mx.slice_axis(x_proj, axis=0, begin=t, end=t + 1, name=em.sub(f"t{t}_x_slice")),
                            shape=(-1, g), name=em.sub(f"t{t}_x"))
            pre, cont = xt, None
            if states is not None:  # Caffe: W_h (cont_t * h_{t-1}) + W_x x_t (+ W_static x_static)
                cont_t = mx.slice_axis(inputs[1], axis=0, begin=t, end=t + 1, name=em.sub(f"t{t}_cont_slice"))
                cont = mx.reshape(cont_t, shape=(-1, 1), name=em.sub(f"t{t}_cont"))
                conted = mx.broadcast_mul(states[0], cont, name=em.sub(f"t{t}_h_conted"))
                if not w_hidden:
                    w_hidden.append(em.param(self.hidden_weight, w[self.hidden_weight]))
                hh = mx.FullyConnected(conted, weight=w_hidden[0], num_hidden=g, no_bias=True,
                                       name=em.sub(f"t{t}_h_transform"))
                pre = mx.broadcast_add(hh, xt, name=em.sub(f"t{t}_input_sum"))
            if static_proj is not None:
                pre = mx.broadcast_add(pre, static_proj, name=em.sub(f"t{t}_static_sum"))
            states = self.step(em, t, pre, cont, states, h)
            outs.append(states[0])
        return self.finish(node, em, outs, states, expose, w, h)

    def stack(self, em, steps, name):
        """T states of N x H -> T x N x H."""
        mx = em.mx
        if len(steps) == 1:
            return mx.expand_dims(steps[0], axis=0, name=name)
        parts = [mx.expand_dims(s, axis=0, name=em.sub(f"t{t}_out")) for t, s in enumerate(steps)]
        return mx.concat(*parts, dim=0, name=name)

    def last_states(self, em, states, h):
        return [em.mx.reshape(s, shape=(1, -1, h), name=em.sub(f"{label}_T"))
                for s, label in zip(states, self.state_labels)]


@register
class LSTM(_Recurrent):
    types = ("LSTM",)
    n_states = 2
    gates = 4
    state_labels = ("h", "c")
    hidden_weight = "W_hc"
    blob_names = ("W_xc", "b_c", "W_xc_static (with x_static)", "W_hc")
    n_bottoms = (2, 5)
    n_tops = (1, 3)
    mx_ops = ("Reshape", "FullyConnected", "slice_axis", "broadcast_mul", "broadcast_add", "Activation",
              "elemwise_mul", "expand_dims", "Concat")
    notes = ("unrolled over T (cont resets any stream at any step); x_static; expose_hidden (h0, c0 -> hT, cT). "
             "Without expose_hidden every forward starts from zero state (Caffe's first forward)")

    def blob_names_for(self, static):
        return ("W_xc", "b_c") + (("W_xc_static",) if static else ()) + ("W_hc",)

    def step(self, em, t, pre, cont, states, h):
        """Caffe's LSTMUnit: i, f, o = sigmoid, g = tanh; c = (cont f) c_prev + i g; h = o tanh(c)."""
        mx = em.mx
        act = {}
        for k, (gate, fn) in enumerate(zip("ifog", ("sigmoid", "sigmoid", "sigmoid", "tanh"))):
            part = mx.slice_axis(pre, axis=1, begin=k * h, end=(k + 1) * h, name=em.sub(f"t{t}_{gate}_in"))
            act[gate] = mx.Activation(part, act_type=fn, name=em.sub(f"t{t}_{gate}"))
        ig = mx.elemwise_mul(act["i"], act["g"], name=em.sub(f"t{t}_ig"))
        if states is None:  # c_prev = 0: c = i g
            c = ig
        else:
            f = mx.broadcast_mul(act["f"], cont, name=em.sub(f"t{t}_f_conted"))
            c = mx.broadcast_add(mx.elemwise_mul(f, states[1], name=em.sub(f"t{t}_fc")), ig, name=em.sub(f"t{t}_c"))
        hidden = mx.elemwise_mul(act["o"], mx.Activation(c, act_type="tanh", name=em.sub(f"t{t}_tanh_c")),
                                 name=em.sub(f"t{t}_h"))
        return [hidden, c]

    def finish(self, node, em, outs, states, expose, w, h):
        out = self.stack(em, outs, em.name(node))
        return [out] + (self.last_states(em, states, h) if expose else [])


@register
class RNN(_Recurrent):
    types = ("RNN",)
    n_states = 1
    gates = 1
    state_labels = ("h",)
    hidden_weight = "W_hh"
    blob_names = ("W_xh", "b_h", "W_xh_static (with x_static)", "W_hh", "W_ho", "b_o")
    n_bottoms = (2, 4)
    n_tops = (1, 2)
    mx_ops = ("Reshape", "FullyConnected", "slice_axis", "broadcast_mul", "broadcast_add", "Activation",
              "expand_dims", "Concat")
    notes = ("unrolled over T (cont resets any stream at any step); x_static; expose_hidden (h0 -> hT). "
             "Without expose_hidden every forward starts from zero state (Caffe's first forward)")

    def blob_names_for(self, static):
        return ("W_xh", "b_h") + (("W_xh_static",) if static else ()) + ("W_hh", "W_ho", "b_o")

    def extra_blob_shapes(self, h):
        return [(h, h), (h,)]

    def output_macs_per_step(self, h):
        return h * h

    def step(self, em, t, pre, cont, states, h):
        """h_t = tanh(W_hh (cont_t h_{t-1}) + W_xh x_t + b_h (+ W_xh_static x_static))."""
        return [em.mx.Activation(pre, act_type="tanh", name=em.sub(f"t{t}_h"))]

    def finish(self, node, em, outs, states, expose, w, h):
        """o = tanh(W_ho h + b_o), applied to all steps at once."""
        mx = em.mx
        hs = self.stack(em, outs, em.sub("h"))
        o = mx.FullyConnected(hs, weight=em.param("W_ho", w["W_ho"]), bias=em.param("b_o", w["b_o"]), num_hidden=h,
                              flatten=False, name=em.sub("o_transform"))
        out = mx.Activation(o, act_type="tanh", name=em.name(node))
        return [out] + (self.last_states(em, states, h) if expose else [])
