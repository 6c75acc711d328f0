"""verify's NumPy reference runs in a worker thread beside MXNet; while both run, BLAS gets one
thread (OpenBLAS's idle threads spin against them), and the process's own setting comes back
afterwards. Checked on a net of several segments with BLAS set to two threads beforehand."""
import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")

from caffe2mx.verification import verify  # noqa: E402
from caffe2mx.verify import parity  # noqa: E402

from test_verify_memory import big_net  # noqa: E402


def _blas_threads():
    return {lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"}


def test_blas_has_one_thread_while_the_reference_runs_beside_mxnet(tmp_path, monkeypatch):
    path = tmp_path / "net.prototxt"
    path.write_text(big_net(96, layers=12))  # 12 x 2 blobs of 32x96x96: several segments
    seen = []
    step = parity.ComparisonRun._numpy_step

    def recording_step(self, node):
        if self.parallel and len(seen) < 8:
            seen.append(_blas_threads())
        return step(self, node)

    monkeypatch.setattr(parity.ComparisonRun, "_numpy_step", recording_step)
    monkeypatch.setattr(parity.os, "cpu_count", lambda: 2)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        if _blas_threads() != {2}:
            pytest.skip(f"BLAS here cannot be set to 2 threads ({_blas_threads()})")
        run = verify(str(path))
        after = _blas_threads()
    assert run.outcome.passed
    assert len(seen) == 8 and all(s == {1} for s in seen[1:]), seen  # the input step may come first
    assert after == {2}
