"""`caffe2mx inspect --model NAME` for every registered model, at the model's native input."""
import pytest

from caffe2mx.commands.inspect import gluon_rows, native_input_shape
from caffe2mx.converter.inspect import totals
from caffe2mx.mxmodels import get_model, list_models


@pytest.mark.parametrize("name", list_models())
def test_inspect_model_counts_every_parameter_once(name):
    rows = gluon_rows(name)
    model = get_model(name)
    model.initialize()
    import mxnet as mx
    model(mx.nd.zeros(native_input_shape(name)))
    expected = sum(p.data().size for p in model.collect_params().values())
    t = totals(rows)
    assert t["params"] == expected
    assert t["macs"] > 0 and all(r["macs"] >= 0 for r in rows)
