"""The HTML report: safe file names under the report directory, and a real browser rendering it.

The browser check runs Debian's headless Chromium on the report of a planted fault and
reads the screenshot's pixels: the graph's red (diverging) and green (passing) nodes and
the table's highlighted rows must be visible. It is skipped, saying why, without Chromium.
"""
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import caffe2mx
from caffe2mx.converter.pipeline import save
from caffe2mx.verify import graphs
from caffe2mx.verify.report import write_report
from caffe2mx.verify.safe_names import safe_path, safe_stem
from caffe2mx.verification import verify
from test_verify_nets import HOSTILE, MINI_ATTENTION, write_net

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_dot = pytest.mark.skipif(not graphs.have_dot(), reason="graphviz `dot` not installed (apt-get install graphviz)")


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "/tmp/abs/y", "..", ".", "", "a/../../b",
                                  "C:\\evil", "x" * 500, "名前/ü", "a\x00b"])
def test_safe_path_stays_inside(tmp_path, name):
    path = safe_path(tmp_path, name, ".npz")
    assert path.parent == tmp_path.resolve()
    assert "/" not in safe_stem(name) and not safe_stem(name).startswith(".")
    assert len(path.name) < 100


def test_different_names_get_different_files():
    names = ["a/b", "a_b", "a b", "a:b", "../a/b"]
    assert len({safe_stem(n) for n in names}) == len(names)


def _planted_report(tmp_path, text, layer_of_fault):
    net = write_net(tmp_path, text)
    conv = caffe2mx.convert(net)
    (name,) = [p[4:] for p in conv.name_map["layers"][layer_of_fault]["params"] if p.endswith("weight")]
    conv.arg_params[name] = conv.arg_params[name] * 1.5
    save(conv, tmp_path / "model")
    run = verify(net, model=str(tmp_path / "model"))
    assert run.outcome.first.layer == layer_of_fault
    return run, write_report(run, tmp_path / "report")


def _all_files(root):
    return [Path(dp) / f for dp, _, fs in os.walk(root) for f in fs]


def test_hostile_blob_names_never_leave_the_report_dir(tmp_path, monkeypatch):
    work = tmp_path / "deep" / "er"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    before = set(_all_files(tmp_path)) | set(_all_files("/tmp/abs")) if os.path.isdir("/tmp/abs") else set()
    run, paths = _planted_report(work, HOSTILE, "../../x")
    report = (work / "report").resolve()
    assert paths["arrays"], "the failing blobs' arrays are written"
    for f in _all_files(report):
        assert f.resolve().is_relative_to(report)
    after = set(_all_files(tmp_path)) | (set(_all_files("/tmp/abs")) if os.path.isdir("/tmp/abs") else set())
    outside = {f for f in after - before if not f.resolve().is_relative_to(report)
               and not f.resolve().is_relative_to(work.resolve())}
    assert not outside, outside
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "deep" / "x").exists()
    data = json.loads(Path(paths["json"]).read_text())
    assert {r["blob"] for r in data["rows"]} >= {"../../x", "/tmp/abs/y", "a b\\c:d*e?"}
    html = Path(paths["html"]).read_text()
    assert "a b\\c:d*e?" in html and "<script" not in html.lower()


@needs_dot
def test_report_is_self_contained(tmp_path):
    run, paths = _planted_report(tmp_path, MINI_ATTENTION, "A/mask/conv")
    html = Path(paths["html"]).read_text()
    assert html.count("<svg") >= 2, "the error plot and the Caffe graph are inline"
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert 'id="layers"' in html and "first wrong layer" in html.lower()
    data = json.loads(Path(paths["json"]).read_text())
    assert data["first_divergence"]["layer"] == "A/mask/conv"


def _screenshot(html, png, size=(1400, 3600)):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--window-size={size[0]},{size[1]}", f"--screenshot={png}", Path(html).resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def _dom(html):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", Path(html).resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def _count(img, rgb):
    return int(np.all(img[:, :, :3] == np.asarray(rgb, np.uint8), axis=2).sum())


@needs_dot
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    _, paths = _planted_report(tmp_path, MINI_ATTENTION, "A/mask/conv")
    png = tmp_path / "shot.png"
    proc = _screenshot(paths["html"], png)
    assert proc.returncode == 0 and png.is_file() and png.stat().st_size > 10_000, proc.stderr[-2000:]
    dom = _dom(paths["html"])
    assert dom.returncode == 0
    assert 'id="layers"' in dom.stdout and dom.stdout.count("<tr") > 10
    assert 'id="caffe-graph"' in dom.stdout and 'class="node' in dom.stdout
    import mxnet as mx
    img = mx.image.imread(str(png), to_rgb=True).asnumpy()
    assert _count(img, (0xEF, 0x53, 0x50)) > 200, "no red (diverging) graph node visible"
    assert _count(img, (0xC8, 0xE6, 0xC9)) > 2000, "no green (passing) graph nodes visible"
    assert _count(img, (0xFF, 0xCD, 0xD2)) > 500, "the diverging table row is not visible"
    assert _count(img, (0xFF, 0xE0, 0xB2)) > 500, "the inherited table rows are not visible"


def test_report_keeps_the_input_for_the_dump_script(tmp_path):
    run, paths = _planted_report(tmp_path, MINI_ATTENTION, "A/mask/conv")
    with np.load(paths["inputs"]) as z:
        np.testing.assert_array_equal(z["data"], run.inputs["data"])
