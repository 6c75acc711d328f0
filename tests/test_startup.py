"""Start-up cost: what a command imports before it needs it.

`import caffe2mx` and the CLI's argument parsing must not load MXNet (3 s of a bad-input
error or `--help`), and loading MXNet through converter.mxnet_import must not load
scikit-learn or scipy (MXNet 1.9.1 imports both for features caffe2mx does not use), while
leaving both importable afterwards. Each check runs in a fresh interpreter.
"""
import json
import subprocess
import sys

import pytest


def _modules_after(code):
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\n"
                          "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
                          "('mxnet', 'sklearn', 'scipy'))))"],
                         capture_output=True, text=True, timeout=300, check=True)
    return {m.split(".")[0] for m in json.loads(out.stdout.splitlines()[-1])}


@pytest.mark.parametrize("code", [
    "import caffe2mx",
    "import caffe2mx.mxmodels.training.options",
    "from caffe2mx.cli import build_parser; build_parser()",
])
def test_package_and_parser_do_not_load_mxnet(code):
    assert "mxnet" not in _modules_after(code)


def test_mxnet_loads_without_sklearn_and_scipy_which_stay_importable():
    loaded = _modules_after("from caffe2mx.converter.mxnet_import import import_mxnet\n"
                            "mx = import_mxnet()\nassert mx.nd.ones((2,)).asnumpy().sum() == 2")
    assert loaded == {"mxnet"}
    loaded = _modules_after("from caffe2mx.converter.mxnet_import import import_mxnet\nimport_mxnet()\n"
                            "import sklearn.base, scipy.sparse")
    assert loaded == {"mxnet", "sklearn", "scipy"}


def test_lazy_train_and_zoo_still_resolve():
    import caffe2mx
    from caffe2mx.mxmodels import list_models
    assert callable(caffe2mx.train)
    assert "attention92" in list_models()
    with pytest.raises(AttributeError):
        caffe2mx.no_such_thing  # noqa: B018
