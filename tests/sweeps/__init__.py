"""Per-layer sweep cases, one module per layer family (the same family names as
`converter/layers/` and `verify/numpy_ref/`): adding a layer type adds its cases to its
family's module here. `all_cases()` imports every module and returns the cases in order.

A case is a one-layer (or few-layer) net as prototxt text plus options for the check
(`opts`: value ranges for inputs/blobs; `bn_blob3`).
"""
import importlib
import pkgutil

import pytest

DATA4 = ("data", (2, 3, 4, 5))
CASES = []


def _inputs_block(style, inputs):
    """Net inputs in one of Caffe's three declaration styles."""
    out = []
    if style == "input_dim":
        for name, shape in inputs:
            out.append(f'input: "{name}"\n' + "".join(f"input_dim: {d}\n" for d in shape))
    elif style == "input_shape":
        for name, shape in inputs:
            out.append(f'input: "{name}"\ninput_shape {{ ' + " ".join(f"dim: {d}" for d in shape) + " }\n")
    else:
        for name, shape in inputs:
            dims = " ".join(f"dim: {d}" for d in shape)
            out.append(f'layer {{ name: "{name}_in" type: "Input" top: "{name}" '
                       f'input_param {{ shape {{ {dims} }} }} }}\n')
    return "".join(out)


def make_net(layers, inputs=(("data", (2, 4, 7, 7)),), style="input_layer"):
    return 'name: "sweep"\n' + _inputs_block(style, inputs) + layers


def layer(name, type_, bottoms=("data",), tops=None, param=""):
    tops = tops or (name,)
    return (f'layer {{ name: "{name}" type: "{type_}" ' + "".join(f'bottom: "{b}" ' for b in bottoms)
            + "".join(f'top: "{t}" ' for t in tops) + param + " }\n")


def case(case_id, text, **kw):
    assert case_id not in {c.id for c in CASES}, case_id
    CASES.append(pytest.param(text, kw, id=case_id))


def all_cases():
    """pytest params of every family module's cases (ids are unique across families)."""
    if not CASES:
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
            importlib.import_module(f"{__name__}.{info.name}")
    return list(CASES)
