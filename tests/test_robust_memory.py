"""The memory budget: nets that would eat the machine are refused before anything is
allocated, with a message naming the largest allocation; the estimate is not below what a
conversion really takes."""
import json
import resource
import subprocess
import sys

import numpy as np
import pytest

import caffe2mx
from caffe2mx.converter import budget
from caffe2mx.converter.errors import ModelError, UsageError

from test_robust_cli import assert_refused, net_text, write

LIMIT = "1G"


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: (input dims, layers, what the refusal must say): each would allocate gigabytes
BOMBS = {
    "input-100000x100000": ((1, 1, 100000, 100000), 'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }',
                            ["more than 2147483647 values"]),
    "conv-num_output-2^31": ((1, 3, 8, 8), 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
                                           'convolution_param { num_output: 2147483648 kernel_size: 3 } }',
                             ["num_output 2147483648 exceeds Caffe's int range"]),
    "conv-num_output-2^31-1": ((1, 3, 8, 8), 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
                                             'convolution_param { num_output: 2147483647 kernel_size: 3 } }',
                               ["weight blob would have shape", "more than 2147483647 values"]),
    "ip-num_output-2^31": ((1, 3, 8, 8), 'layer { name: "c" type: "InnerProduct" bottom: "data" top: "c" '
                                         'inner_product_param { num_output: 2147483648 } }',
                           ["num_output 2147483648 exceeds Caffe's int range"]),
    "ip-num_output-2^30": ((1, 3, 8, 8), 'layer { name: "c" type: "InnerProduct" bottom: "data" top: "c" '
                                         'inner_product_param { num_output: 1073741824 } }',
                           ["weight blob would have shape", "more than 2147483647 values"]),
    "interp-height-2^31-1": ((1, 1, 2, 2), 'layer { name: "c" type: "Interp" bottom: "data" top: "c" '
                                           'interp_param { height: 2147483647 width: 1 } }',
                             ["blob 'c' [1, 1, 2147483647, 1]", "memory limit of 1.0 GB", "--max-memory"]),
    "ave-divisor-map": ((1, 1, 30000, 30000), 'layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
                                              'pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 2 } }',
                        ["memory limit of 1.0 GB", "largest blob is"]),
}


@pytest.mark.parametrize("case", sorted(BOMBS))
def test_memory_bombs_are_refused_before_allocating(tmp_path, capsys, case):
    dims, body, must = BOMBS[case]
    p = write(tmp_path, "net.prototxt", net_text(dims, body))
    before = peak_rss_mb()
    for cmd in (["convert", p, "-o", tmp_path / "out" / "m"], ["verify", p], ["init-weights", p, "-o", tmp_path / "w"],
                ["export-onnx", p, "-o", tmp_path / "n.onnx"]):
        assert_refused(capsys, tmp_path, cmd + ["--max-memory", LIMIT], [str(p), *must])
    grown = peak_rss_mb() - before
    assert grown < 1024, f"peak RSS grew by {grown:.0f} MB (limit {LIMIT})"


def test_verify_is_refused_where_convert_is_cheap(tmp_path, capsys):
    """With a caffemodel, converting an upsampling net allocates only its weights, but verify
    runs it (MXNet and the float64 reference, every blob kept): only verify is refused."""
    from test_bad_inputs import write_model
    body = ('layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 2 '
            'kernel_size: 1 } }\nlayer { name: "up" type: "Interp" bottom: "c" top: "up" '
            'interp_param { height: 8000 width: 8000 } }')
    p = write(tmp_path, "net.prototxt", net_text((1, 1, 2, 2), body))
    w = write_model(tmp_path / "w.caffemodel", {"c": [np.ones((2, 1, 1, 1), np.float32), np.zeros(2, np.float32)]},
                    text=net_text((1, 1, 2, 2), body))
    rc = caffe2mx.cli.main(["convert", str(p), str(w), "-o", str(tmp_path / "out" / "m"), "-q", "--max-memory", LIMIT])
    assert rc == 0, capsys.readouterr().err
    assert_refused(capsys, tmp_path, ["verify", p, w, "--max-memory", LIMIT], ["verify of this net", "'up'"])
    assert_refused(capsys, tmp_path, ["verify", "--model", tmp_path / "out" / "m", "--max-memory", LIMIT],
                   ["verify of this net"])


def test_the_api_honours_the_budget(tmp_path):
    dims, body, _ = BOMBS["interp-height-2^31-1"]
    p = write(tmp_path, "net.prototxt", net_text(dims, body))
    with budget.limited(LIMIT), pytest.raises(ModelError, match="memory limit"):
        caffe2mx.convert(p)
    with budget.limited("none"):
        est = budget.estimate(caffe2mx.read_net(p), "convert")
    assert est.total > 8 * (2**31 - 1)  # the 8 GB blob and its float32 forward: refused above, not run here


@pytest.mark.parametrize("text,expected", [("8G", 8 << 30), ("512M", 512 << 20), ("1.5GiB", int(1.5 * (1 << 30))),
                                           ("2000000", 2000000), ("64kb", 64 << 10), ("none", None)])
def test_sizes(text, expected):
    assert budget.parse_size(text) == expected


def test_bad_size_and_percent(monkeypatch):
    with pytest.raises(UsageError):
        budget.parse_size("lots")
    monkeypatch.setattr(budget, "available_bytes", lambda: 1000)
    assert budget.parse_size("50%") == 500
    with budget.limited(None):
        assert budget.limit()[0] == int(1000 * budget.DEFAULT_SHARE)  # the default: a share of what is available


def test_available_memory_is_read():
    """MemAvailable is a positive number no larger than the machine's memory."""
    avail = budget.available_bytes()
    total = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) * 1024
    assert avail is not None and 0 < avail <= total


CHILD = r"""
import json, sys
import caffe2mx, mxnet  # MXNet's own import is not the conversion's
from caffe2mx.converter import budget
net = caffe2mx.read_net(sys.argv[1])
est = budget.estimate(net, "convert", caffemodel=sys.argv[2])
def status(key):  # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key))
base = status("VmRSS:")
caffe2mx.convert(net, sys.argv[2], output_prefix=sys.argv[3])
peak = status("VmHWM:")
print(json.dumps({"estimate": est.total, "grown": peak - base}))
"""


def test_the_estimate_covers_a_real_conversion(tmp_path):
    """A conversion with 48 MB of weights, in a fresh process: the peak RSS grows by less than
    the estimate (which is what the budget compares)."""
    from test_bad_inputs import write_model
    body = ('layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 512 '
            'kernel_size: 3 pad: 1 } }\nlayer { name: "fc" type: "InnerProduct" bottom: "c" top: "fc" '
            'inner_product_param { num_output: 96 } }')
    text = net_text((1, 16, 16, 16), body)
    p = write(tmp_path, "net.prototxt", text)
    rng = np.random.default_rng(0)
    w = write_model(tmp_path / "w.caffemodel", {
        "c": [rng.standard_normal((512, 16, 3, 3)).astype(np.float32), np.zeros(512, np.float32)],
        "fc": [rng.standard_normal((96, 512 * 256)).astype(np.float32), np.zeros(96, np.float32)]}, text=text)
    r = subprocess.run([sys.executable, "-c", CHILD, str(p), str(w), str(tmp_path / "m")], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert 0 < got["grown"] < got["estimate"], got


VERIFY_CHILD = r"""
import json, sys
import caffe2mx, mxnet  # MXNet's own import is not the run's
from caffe2mx.converter import budget
def status(key):
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key))
net = caffe2mx.read_net(sys.argv[1])
est = budget.estimate(net, "verify", seeded=True)
base = status("VmRSS:")
run = caffe2mx.verify(sys.argv[1])
print(json.dumps({"estimate": est.total, "grown": status("VmHWM:") - base, "passed": run.outcome.passed}))
"""


def _verify_estimate(path):
    r = subprocess.run([sys.executable, "-c", VERIFY_CHILD, str(path)], capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_the_estimate_covers_a_real_verify(tmp_path):
    """verify (seeded weights, MXNet and the float64 reference, every blob kept) on a net whose
    blobs are large (8 MB each): the peak RSS grows by less than the estimate."""
    convs = "".join(f'layer {{ name: "c{i}" type: "Convolution" bottom: "{"data" if i == 0 else f"c{i - 1}"}" '
                    f'top: "c{i}" convolution_param {{ num_output: 32 kernel_size: 3 pad: 1 }} }}\n'
                    f'layer {{ name: "r{i}" type: "ReLU" bottom: "c{i}" top: "c{i}" }}\n' for i in range(6))
    p = write(tmp_path, "net.prototxt", net_text((1, 32, 256, 256), convs))
    got = _verify_estimate(p)
    assert got["passed"] and 0 < got["grown"] < got["estimate"], got


@pytest.mark.slow
def test_the_estimate_covers_verify_of_attention56():
    from conftest import PROTOTXTS
    got = _verify_estimate(next(p for p in PROTOTXTS if p.name == "attention56.prototxt"))
    assert got["passed"] and 0 < got["grown"] < got["estimate"], got
