"""What is wrong in the first unit whose own conversion fails: which layer, which part.

- A unit of several layers is narrowed to one. Against a Caffe dump (a conv -> BN -> ReLU
  chain written in place is one unit there), the NumPy reference is run through the chain
  on Caffe's own inputs; where it reproduces Caffe's output, its intermediate values feed
  each layer's MXNet piece in turn, and the first that differs is the culprit.
- A fused pair (BatchNorm + Scale, one MXNet BatchNorm) has no intermediate value in
  MXNet; its operator is split into its normalising part (moving mean, variance, eps) and
  its affine part (gamma, beta), each run in NumPy against the matching Caffe layer run
  alone by the NumPy reference.
- A run option with another reading (the fork BN's fourth blob: `--bn-blob3`) is tried
  on the unit: if the other reading reproduces what the converted layer (or Caffe) computes,
  the fix is named.
"""
from dataclasses import dataclass, field

import numpy as np

from .metrics import compare, escalated_tolerance, layer_tolerance
from .mxnet_pieces import op_nodes
from .numpy_ref.forward import feeds_for, run_nodes
from .numpy_ref.norm import BN_BLOB3
from .units import comparison_units, reduction_length

#: run options with more than one reading, and the flag that chooses one
ALTERNATIVES = {"bn_blob3": (BN_BLOB3, "--bn-blob3")}


@dataclass
class Diagnosis:
    layer: str                # the layer found wrong (one of the unit's), or None where it stays open
    layer_type: str
    line: int
    unit: list                # the unit's layers
    version: str              # the measured output that failed
    own: object               # its Diff (teacher forced) and tolerance
    rtol: float
    inputs: list = field(default_factory=list)  # (version, free-running Diff or None, bound or None, status)
    parts: list = field(default_factory=list)   # {"layer", "type", "max_rel", "rtol", "wrong"}
    findings: list = field(default_factory=list)
    hint: str = None


def diagnose_unit(run, unit, version, own, tol, error=None, actual=None):
    """The Diagnosis of a failing unit; `actual` is MXNet's teacher-forced output at `version`."""
    nodes = [run.node_of[name] for name in unit.layers]
    culprit = nodes[-1] if len(nodes) == 1 else None
    dx = Diagnosis(layer=None, layer_type=None, line=None, unit=list(unit.layers), version=version, own=own,
                   rtol=tol)
    for b in unit.bottoms:
        row = next((r for r in reversed(run.rows) if r.version == b), None)
        if row is not None:
            dx.inputs.append((b, row.drift, row.drift_bound, row.status))
    if not error:  # (an MXNet error is the row's own note)
        try:
            culprit = _narrow(run, unit, version, nodes, dx, actual) or culprit
        except Exception as exc:  # the diagnosis is a bonus: never let it hide the verdict
            dx.findings.append(f"(could not narrow further: {type(exc).__name__}: {exc})")
    if culprit is not None:
        dx.layer, dx.layer_type, dx.line = culprit.name, culprit.type, culprit.line
    return dx


def _values64(run, unit):
    return {b: np.asarray(run.ref_value(b), np.float64) for b in unit.bottoms}


def _through(run, nodes, values, options=None):
    feeds = run._feeds64 or feeds_for(run.graph, run.inputs)
    with np.errstate(all="ignore"):
        return run_nodes(nodes, values, dtype=np.float64, options=options or run.options, feeds=feeds,
                         file=run.graph.file)


def _narrow(run, unit, version, nodes, dx, actual):
    """The culprit node, or None; findings and parts go into dx."""
    values = _values64(run, unit)
    alt = _other_reading(run, version, nodes, values, dx, actual)
    if run.numpy_source:
        if len(nodes) > 1:
            return _fused_parts(run, unit, nodes, values, dx) or alt
        return alt or nodes[0]
    mine = _through(run, nodes, values)
    ref = run.ref_value(version)
    agrees = compare(mine[version], ref)
    if not agrees.passed(dx.rtol):
        if alt is None:
            dx.findings.append(f"the NumPy reference, run through {_names(nodes)} on Caffe's own inputs, does not "
                               f"reproduce Caffe's output either (max_rel {agrees.max_rel:.2e}): Caffe computes "
                               f"something else here than caffe2mx's reading of these layers")
        return alt
    if len(nodes) == 1:
        return nodes[0]
    return _sub_units(run, unit, nodes, mine, dx) or alt


def _names(nodes):
    return ", ".join(f"'{n.name}'" for n in nodes)


def _other_reading(run, version, nodes, values, dx, actual):
    """Try each run option's other readings on the unit; the layer they change, where one matches
    what the converted layer computes (NumPy reference) or what Caffe computed (a dump)."""
    target = actual if run.numpy_source else run.ref_value(version)
    if target is None:
        return None
    base = None
    for key, (choices, flag) in ALTERNATIVES.items():
        current = run.options.get(key)
        for other in choices:
            if other == current:
                continue
            got = _through(run, nodes, values, dict(run.options, **{key: other}))
            base = base or _through(run, nodes, values)
            changed = [n for n in nodes if any(not np.array_equal(got[t], base[t]) for t in n.tops)]
            d = compare(target, got[version])
            if not changed or not d.passed(max(dx.rtol, 1e-5)):
                continue
            if run.numpy_source:
                dx.findings.append(f"the converted layer computes what the reference computes with {flag} {other} "
                                   f"(max_rel {d.max_rel:.2e}), but the reference reads {current}: the model was "
                                   f"converted with the other reading")
            else:
                dx.findings.append(f"Caffe's output here is what {flag} {other} gives (max_rel {d.max_rel:.2e}), "
                                   f"not {current}: convert with {flag} {other}")
            dx.hint = f"{flag} {other}"
            return changed[0]
    return None


def _sub_units(run, unit, nodes, values, dx):
    """Each layer of a chain fed the NumPy reference's intermediate values; the first MXNet gets wrong."""
    measured = set(unit.bottoms) | {t for n in nodes for t in n.tops if run.pieces.has(t)}
    subgraph = type("Sub", (), {"nodes": tuple(nodes)})()
    for sub in comparison_units(subgraph, measured):
        piece = run.pieces.piece(sub.layers, sub.bottoms, sub.tops)
        outs = piece({b: np.asarray(values[b], np.float32) for b in piece.needed})
        sub_nodes = [run.node_of[n] for n in sub.layers]
        tol = sum(layer_tolerance(n.type, reduction_length(n, run.shapes)) for n in sub_nodes)
        for t, got in zip(sub.tops, outs):
            d = compare(got, values[t])
            if not d.passed(tol) and d.shape_ok and d.nonfinite_ok:  # what float32 does to it on these values
                f32 = run_nodes(sub_nodes, {b: np.asarray(values[b], np.float32) for b in sub.bottoms},
                                dtype=np.float32, options=run.options, file=run.graph.file,
                                feeds=feeds_for(run.graph, run.inputs, np.float32))[t]
                tol = escalated_tolerance(tol, compare(f32, values[t]).max_rel)
            if not d.passed(tol):
                dx.findings.append(f"fed the NumPy reference's values inside the chain (which reproduce Caffe's), "
                                   f"{_names(sub_nodes)} differs: max_rel {d.max_rel:.2e} (tolerance {tol:.2g})")
                if len(sub_nodes) > 1:
                    return _fused_parts(run, sub, sub_nodes, {b: values[b] for b in sub.bottoms}, dx)
                return sub_nodes[0]
    return None


def _fused_parts(run, unit, nodes, values, dx):
    """Split the fused pair's MXNet BatchNorm into its normalising and affine parts; the wrong one."""
    ops = op_nodes(run.pieces, unit.layers)
    if len(ops) != 1 or ops[0][0] != "BatchNorm" or len(nodes) != 2 or len(unit.bottoms) != 1:
        dx.findings.append(f"one of {_names(nodes)} differs (MXNet computes them together, with no value "
                           f"in between to compare)")
        return None
    _, attrs, params = ops[0]
    gamma, beta, mean, var = params[1:5]
    eps = float(attrs.get("eps", 1e-3))
    if str(attrs.get("fix_gamma", "True")).lower() == "true":
        gamma = np.ones_like(gamma)
    x = values[unit.bottoms[0]]
    first, second = nodes
    ref = _through(run, nodes, {unit.bottoms[0]: x})
    z_ref, y_ref = ref[first.tops[0]], ref[second.tops[0]]
    shape = (1, -1) + (1,) * (x.ndim - 2)
    z_mx = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    y_mx = gamma.reshape(shape) * z_ref + beta.reshape(shape)
    culprit = None
    for node, got, want in ((first, z_mx, z_ref), (second, y_mx, y_ref)):
        d = compare(got, want)
        tol = max(layer_tolerance(node.type, 1), 1e-6)
        wrong = not d.passed(tol)
        dx.parts.append({"layer": node.name, "type": node.type, "max_rel": d.max_rel, "rtol": tol, "wrong": wrong})
        if wrong and culprit is None:
            culprit = node
    which = "normalising (moving mean, variance, eps)" if culprit is first else "affine (gamma, beta)"
    if culprit is not None:
        dx.findings.append(f"{_names(nodes)} run as one MXNet BatchNorm: its {which} part differs from "
                           f"'{culprit.name}' ({culprit.type}) run alone by the NumPy reference")
    else:
        dx.findings.append(f"{_names(nodes)} run as one MXNet BatchNorm: each part matches alone, the pair does not")
    return culprit
