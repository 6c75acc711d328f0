"""Start a parameter-server training job: the ps-lite scheduler, S servers and N workers.

MXNet's bundled launcher (tools/launch.py with dmlc_tracker) calls Thread.isAlive, which
Python 3.9 removed, so on Python 3.11 it fails after starting its processes; this module
starts them itself with ps-lite's standard environment: DMLC_ROLE (scheduler, server,
worker), DMLC_PS_ROOT_URI / DMLC_PS_ROOT_PORT (the scheduler), DMLC_NUM_SERVER,
DMLC_NUM_WORKER. The scheduler and servers are plain `python -c "import mxnet"` processes
(MXNet runs the server loop when imported with those roles); each worker runs
`python -m caffe2mx.mxmodels.training.worker CONFIG`, the same training as a single process,
reading its own shard of the data. `--launch local` runs everything on this host;
`--launch ssh --hosts FILE` runs the workers over ssh on the listed hosts (same Python
environment and a shared --out directory on every host), the scheduler and servers here.
"""
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

from caffe2mx.converter.errors import Caffe2MXError, UsageError

WORKER_MODULE = "caffe2mx.mxmodels.training.worker"
LAUNCH_KEYS = ("launch", "workers", "servers", "hosts", "launch_port", "launch_host", "dry_run")


class LaunchError(Caffe2MXError):
    """A process of the job failed."""


def _die_with_parent():
    """In a child: ask Linux to send SIGTERM when the launcher dies, even if it is killed
    outright, so no worker or server outlives its job (a no-op where prctl is missing)."""
    try:
        import ctypes
        import signal
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def read_hosts(path):
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the host file ({exc.strerror})") from None
    hosts = [line.split("#")[0].strip() for line in lines]
    hosts = [h for h in hosts if h]
    if not hosts:
        raise UsageError(f"{path}: no hosts (one host name or address per line)")
    return hosts


def thread_env(workers):
    """OMP threads per worker: the cores shared among the workers of this host, unless set."""
    if "OMP_NUM_THREADS" in os.environ:
        return {}
    return {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // max(workers, 1)))}


def plan(cfg, config_path, port):
    """[(role, index, argv, env additions)] of every process of the job."""
    ps = {"DMLC_PS_ROOT_URI": cfg.launch_host, "DMLC_PS_ROOT_PORT": str(port),
          "DMLC_NUM_SERVER": str(cfg.servers), "DMLC_NUM_WORKER": str(cfg.workers)}
    local = cfg.launch == "local"
    here = dict(ps, DMLC_NODE_HOST=cfg.launch_host) if local else dict(ps)
    procs = [("scheduler", 0, [sys.executable, "-c", "import mxnet"], dict(here, DMLC_ROLE="scheduler"))]
    procs += [("server", i, [sys.executable, "-c", "import mxnet"], dict(here, DMLC_ROLE="server"))
              for i in range(cfg.servers)]
    worker_argv = [sys.executable, "-m", WORKER_MODULE, str(config_path)]
    hosts = read_hosts(cfg.hosts) if not local else None
    for i in range(cfg.workers):
        env = dict(here if local else ps, DMLC_ROLE="worker", DMLC_WORKER_ID=str(i))
        env.update(thread_env(cfg.workers if local else 1))
        if local:
            procs.append(("worker", i, worker_argv, env))
        else:
            host = hosts[i % len(hosts)]
            remote = " ".join([f"cd {shlex.quote(os.getcwd())} &&", "env"]
                              + [f"{k}={shlex.quote(v)}" for k, v in sorted(env.items())]
                              + [shlex.quote(a) for a in worker_argv])
            procs.append(("worker", i, ["ssh", "-o", "BatchMode=yes", host, remote], {}))
    return procs


def launch(cfg, explicit, out, log=print):
    """Run the job to completion; raises LaunchError when a worker fails."""
    out = Path(out)
    job = out / "launch"
    job.mkdir(parents=True, exist_ok=True)
    worker_options = {k: v for k, v in explicit.items() if k not in LAUNCH_KEYS}
    worker_options["out"] = str(out.resolve())
    config_path = (job / "worker-options.json").resolve()
    config_path.write_text(json.dumps(worker_options, indent=1))
    port = cfg.launch_port or free_port(cfg.launch_host if cfg.launch == "local" else "0.0.0.0")
    procs = plan(cfg, config_path, port)
    if not cfg.quiet:
        log(f"launch {cfg.launch}: scheduler {cfg.launch_host}:{port}, {cfg.servers} server(s), "
            f"{cfg.workers} worker(s); ps-lite logs in {job}")
    started = []
    try:
        for role, i, argv, env in procs:
            full_env = dict(os.environ, **env)
            if role == "worker":
                p = subprocess.Popen(argv, env=full_env, preexec_fn=_die_with_parent)
            else:
                logf = open(job / f"{role}-{i}.log", "w")
                p = subprocess.Popen(argv, env=full_env, stdout=logf, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)
                logf.close()
            started.append((role, i, p))
            if role == "scheduler":
                time.sleep(0.3)
        workers = [(i, p) for role, i, p in started if role == "worker"]
        while True:
            codes = [(i, p.poll()) for i, p in workers]
            failed = [(i, c) for i, c in codes if c not in (None, 0)]
            if failed:
                i, c = failed[0]
                raise LaunchError(f"worker {i} failed (exit code {c}); see its output above and "
                                  f"{job} for the scheduler and server logs")
            if all(c == 0 for _, c in codes):
                break
            time.sleep(0.2)
        for role, i, p in started:
            if role != "worker":
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.terminate()
    finally:
        for _, _, p in started:
            if p.poll() is None:
                p.terminate()
        for _, _, p in started:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
