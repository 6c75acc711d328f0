"""verify holds only the values it still needs: peak RSS on a net of many large blobs.

The net: 60 blobs of 1x32x256x256 (8 MB each in float32), written as 30 pairs of a 1x1
convolution and a ReLU into new blobs, so nothing is in place. Holding every blob at once
would take 480 MB in float32, 960 MB more for a float64 reference, and as much again for
the MXNet outputs; verify must stay under MAX_PEAK_MB, measured with resource.getrusage in
a fresh process (the verify of an 8x8 version of the same net, which holds almost nothing,
run first in the same process, sets the baseline: MXNet, NumPy and the interpreter themselves).
"""
import json
import subprocess
import sys

from conftest import REPO

LAYERS = 30
SIZE = 256
#: allowed over the baseline: two segments of <= 2M values (parity.SEGMENT_ELEMENTS) in float64 and
#: float32 chains, MXNet's outputs, and the comparison's chunks
MAX_OVER_BASELINE_MB = 320

CHILD = r'''
import json, resource, sys
from caffe2mx.verification import verify
out = []
for path in sys.argv[1:]:
    run = verify(path)
    out.append({"passed": run.outcome.passed, "rows": len(run.outcome.rows),
                "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
print(json.dumps(out))
'''


def big_net(size, layers=LAYERS, channels=32):
    lines = ['name: "many-large-blobs"', 'input: "data"',
             f"input_shape {{ dim: 1 dim: {channels} dim: {size} dim: {size} }}"]
    bottom = "data"
    for i in range(layers):
        lines.append(f'layer {{ name: "conv{i}" type: "Convolution" bottom: "{bottom}" top: "conv{i}" '
                     f'convolution_param {{ num_output: {channels} kernel_size: 1 }} }}')
        lines.append(f'layer {{ name: "relu{i}" type: "ReLU" bottom: "conv{i}" top: "relu{i}" }}')
        bottom = f"relu{i}"
    return "\n".join(lines) + "\n"


def _peaks(tmp_path, *sizes):
    """The process's peak RSS after verifying each net in turn, in one fresh process."""
    paths = []
    for size in sizes:
        paths.append(tmp_path / f"net{size}.prototxt")
        paths[-1].write_text(big_net(size))
    proc = subprocess.run([sys.executable, "-c", CHILD] + [str(p) for p in paths], capture_output=True, text=True,
                          timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_peak_rss_stays_bounded_on_many_large_blobs(tmp_path):
    small, big = _peaks(tmp_path, 8, SIZE)
    assert big["passed"] and big["rows"] == 2 * LAYERS + 1
    all_blobs_f32_mb = (2 * LAYERS + 1) * 32 * SIZE * SIZE * 4 / 2 ** 20
    assert big["peak_mb"] - small["peak_mb"] <= MAX_OVER_BASELINE_MB, (big, small, all_blobs_f32_mb)
    assert MAX_OVER_BASELINE_MB < all_blobs_f32_mb, "the bound would not catch holding every blob"
