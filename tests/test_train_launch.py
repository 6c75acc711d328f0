"""The parameter-server job plan: ps-lite's environment for each role, locally and over ssh."""
import shlex
from types import SimpleNamespace

import pytest

from caffe2mx.converter.errors import UsageError
from caffe2mx.mxmodels.training.launch import plan, read_hosts

PS_VARS = ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_SERVER", "DMLC_NUM_WORKER")


def _cfg(**kw):
    base = dict(launch="local", workers=2, servers=1, hosts=None, launch_host="127.0.0.1")
    base.update(kw)
    return SimpleNamespace(**base)


def test_local_plan_roles_and_environment(tmp_path):
    procs = plan(_cfg(), tmp_path / "opts.json", 9123)
    assert [(r, i) for r, i, _, _ in procs] == [("scheduler", 0), ("server", 0), ("worker", 0), ("worker", 1)]
    for role, _, argv, env in procs:
        assert all(v in env for v in PS_VARS)
        assert env["DMLC_ROLE"] == role and env["DMLC_PS_ROOT_PORT"] == "9123"
        assert (env["DMLC_NUM_SERVER"], env["DMLC_NUM_WORKER"]) == ("1", "2")
        if role == "worker":
            assert argv[1:] == ["-m", "caffe2mx.mxmodels.training.worker", str(tmp_path / "opts.json")]
        else:
            assert argv[1:] == ["-c", "import mxnet"]


def test_ssh_plan_runs_workers_on_the_hosts(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("node1\n# a comment\nnode2  # second\n\n")
    procs = plan(_cfg(launch="ssh", workers=3, servers=2, hosts=str(hosts), launch_host="10.0.0.1"),
                 tmp_path / "opts.json", 9000)
    workers = [p for p in procs if p[0] == "worker"]
    assert [argv[3] for _, _, argv, _ in workers] == ["node1", "node2", "node1"]
    for _, i, argv, _ in workers:
        assert argv[:3] == ["ssh", "-o", "BatchMode=yes"]
        remote = shlex.split(argv[4])
        env = dict(t.split("=", 1) for t in remote if "=" in t and t.split("=", 1)[0].isupper())
        assert env["DMLC_ROLE"] == "worker" and env["DMLC_PS_ROOT_URI"] == "10.0.0.1"
        assert (env["DMLC_NUM_SERVER"], env["DMLC_NUM_WORKER"], env["DMLC_WORKER_ID"]) == ("2", "3", str(i))
        assert remote[-3:] == ["-m", "caffe2mx.mxmodels.training.worker", str(tmp_path / "opts.json")]
    assert sum(1 for p in procs if p[0] == "server") == 2


def test_host_file_errors(tmp_path):
    with pytest.raises(UsageError, match="cannot read the host file"):
        read_hosts(tmp_path / "missing")
    (tmp_path / "empty").write_text("# nothing\n")
    with pytest.raises(UsageError, match="no hosts"):
        read_hosts(tmp_path / "empty")
