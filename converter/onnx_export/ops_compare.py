"""Comparisons and selection: MXNet's 0/1 float comparisons and `where`.

MXNet comparisons yield float 0/1 where ONNX yields bool, so each comparison is cast back
to float, and `where` casts its float condition to bool (non-zero is true, as in MXNet).
"""
from .registry import attr_float, translates

_COMPARE = {"broadcast_greater": "Greater", "broadcast_equal": "Equal"}
_COMPARE_SCALAR = {"_greater_scalar": "Greater"}


def _float(b, flag, output):
    from onnx import TensorProto
    b.add("Cast", [flag], output, to=TensorProto.FLOAT)


@translates(*_COMPARE)
def compare(b, node):
    _float(b, b.add(_COMPARE[node.op], node.inputs[:2], suffix=_COMPARE[node.op].lower()), node.output)


@translates(*_COMPARE_SCALAR)
def compare_scalar(b, node):
    c = b.scalar("scalar", attr_float(node.attrs, "scalar", 0.0))
    _float(b, b.add(_COMPARE_SCALAR[node.op], [node.inputs[0], c], suffix=_COMPARE_SCALAR[node.op].lower()),
           node.output)


@translates("where")
def where(b, node):
    from onnx import TensorProto
    cond = b.add("Cast", [node.inputs[0]], suffix="condition", to=TensorProto.BOOL)
    b.add("Where", [cond, node.inputs[1], node.inputs[2]], node.output)
