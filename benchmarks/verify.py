"""Wall time, CPU time and peak memory of `caffe2mx verify --reference numpy`, whole and by stage.

    python benchmarks/verify.py [NET.prototxt ...] [--rounds 3] [--no-stages] [--baseline PKGDIR]

Default nets: prototxts/attention92.prototxt and ../shared/fixtures/corpus/pspnet50_ade20k.prototxt
(473x473), both with seeded weights (drawn, BN-calibrated and converted: conversion included).
Each round runs, in fresh processes:

- the command a user types, `python -m caffe2mx verify NET --reference numpy -q`: wall time
  from process start (imports included), CPU time (user + system, all threads) and the
  process's own peak RSS (os.wait4);
- the same run through the API (`caffe2mx.verification.verify`), which reports each stage's
  wall time and the peak RSS reached by its end (VerifyRun.timings / .peak_rss_mb).

`--baseline PKGDIR` runs another build's command in the same rounds, interleaved (PKGDIR holds
an importable `caffe2mx`, e.g. `pip install --no-deps --target PKGDIR CHECKOUT`), and prints the
ratios of the medians. The machine may be shared: the 1-minute load average is printed before
and after every run; compare medians and ratios, not single runs.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NETS = [ROOT / "prototxts" / "attention92.prototxt",
                ROOT.parent / "shared" / "fixtures" / "corpus" / "pspnet50_ade20k.prototxt"]

STAGES = r'''
import json, resource, sys, time
t0 = time.perf_counter()
from caffe2mx.converter.mxnet_import import import_mxnet
import_mxnet()  # as conversion imports it; timed apart
t1 = time.perf_counter()
from caffe2mx.verification import verify
run = verify(sys.argv[1])
print(json.dumps({"import_mxnet_s": round(t1 - t0, 3), "timings_s": run.timings, "peak_rss_mb": run.peak_rss_mb,
                  "passed": run.outcome.passed, "rows": len(run.outcome.rows)}))
'''


def _load():
    return os.getloadavg()[0]


def run_child(argv, env=None, cwd=ROOT):
    """(wall s, CPU s, peak RSS MB, exit code, stdout) of a fresh process."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=cwd, env=env, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - t, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode, out


def _cli_round(label, command, env, cwd, record):
    before = _load()
    wall, cpu, peak, rc, _ = run_child(command, env, cwd)
    record.append((wall, cpu, peak))
    print(f"  {label}: exit {rc}, {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS {peak:.0f} MB "
          f"(load {before:.1f} -> {_load():.1f})")


def _median(runs, k):
    return statistics.median(r[k] for r in runs)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("nets", nargs="*", type=Path, default=DEFAULT_NETS)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-stages", action="store_true", help="only the command-line runs")
    p.add_argument("--baseline", type=Path, metavar="PKGDIR", help="another build to run interleaved")
    args = p.parse_args()
    print(f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    base_env = None
    if args.baseline:
        base_env = dict(os.environ, PYTHONPATH=str(args.baseline.resolve()))
    for net in args.nets:
        if not net.is_file():
            print(f"{net}: absent, skipped")
            continue
        net = net.resolve()
        command = [sys.executable, "-m", "caffe2mx", "verify", str(net), "--reference", "numpy", "-q"]
        print(f"\n== {net.name}\ncommand: caffe2mx verify {net} --reference numpy -q")
        runs, base_runs, stage_runs = [], [], []
        for r in range(args.rounds):
            _cli_round(f"round {r + 1}", command, None, ROOT, runs)
            if base_env is not None:  # from another directory: the checkout's own caffe2mx must not shadow it
                _cli_round(f"  baseline", command, base_env, "/", base_runs)
            if not args.no_stages:
                before = _load()
                *_, rc, out = run_child([sys.executable, "-c", STAGES, str(net)])
                if rc == 0:
                    data = json.loads(out.strip().splitlines()[-1])
                    stage_runs.append(data)
                    stages = ", ".join(f"{k} {v:.1f} s / {data['peak_rss_mb'].get(k, 0):.0f} MB"
                                       for k, v in data["timings_s"].items())
                    print(f"    stages (wall / peak RSS by its end): import mxnet {data['import_mxnet_s']:.1f} s, "
                          f"{stages} (load {before:.1f} -> {_load():.1f})")
        print(f"  median: {_median(runs, 0):.1f} s wall, {_median(runs, 1):.1f} s CPU, peak RSS "
              f"{_median(runs, 2):.0f} MB (max {max(r[2] for r in runs):.0f} MB) over {len(runs)} rounds")
        if base_runs:
            print(f"  baseline median: {_median(base_runs, 0):.1f} s wall, {_median(base_runs, 1):.1f} s CPU, peak RSS "
                  f"{_median(base_runs, 2):.0f} MB; ratios this/baseline: wall "
                  f"{_median(runs, 0) / _median(base_runs, 0):.2f}, CPU {_median(runs, 1) / _median(base_runs, 1):.2f}, "
                  f"peak RSS {_median(runs, 2) / _median(base_runs, 2):.2f}")
        if stage_runs:
            keys = stage_runs[0]["timings_s"]
            med = {k: statistics.median(d["timings_s"].get(k, 0) for d in stage_runs) for k in keys}
            print("  median stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in med.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
