"""Long fuzz runs: the properties of tests/test_fuzz.py for as many cases as asked, counted.

    .venv/bin/python benchmarks/fuzz.py [--cases 20000] [--seed 0] [--only nets,text,bytes,weights,models]

Each family gets its share of --cases (weights below). Unlike the test, a failing case does
not stop the run: every exception that is not caffe2mx's own error (and every case that
converts but does not bind in MXNet with the inferred shapes) is counted and its first
occurrences printed with the generated input, so one run reports everything. Exit status 1
if there was any such failure. Peak RSS of the whole run is printed next to the budget each
case runs under (test_fuzz.BUDGET).
"""
import argparse
import collections
import os
import resource
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import test_fuzz as tf  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402

FAMILIES = {  # name: (strategy, run one case, share of the cases)
    "nets": (tf.nets, lambda text: tf.run_net_text(text), 4),
    "text": (tf.mutated_text, lambda text: tf.run_net_text(text), 2),
    "bytes": (tf.mutated_bytes, lambda data: tf.run_net_text(tf.SEED_NET, data), 2),
    "weights": (tf.mutated_weights, lambda data: tf.run_net_text(tf.SEED_NET, data), 1),
    "models": (tf.damaged_model, tf.run_damaged, 1),
}


def run_family(name, n, seed, counts, failures):
    strategy, run, _ = FAMILIES[name]

    @settings(max_examples=n, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(strategy())
    def prop(value):
        try:
            counts[(name, run(value))] += 1
        except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
            counts[(name, "FAILURE")] += 1
            key = (name, type(exc).__name__, str(exc).splitlines()[0][:120] if str(exc) else "")
            if key not in failures:
                failures[key] = (value, traceback.format_exc(limit=6))

    hypothesis_seed(seed)(prop)()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=",".join(FAMILIES))
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n]
    share = sum(FAMILIES[n][2] for n in names)
    counts, failures = collections.Counter(), {}
    t0 = time.perf_counter()
    for name in names:
        n = args.cases * FAMILIES[name][2] // share
        t = time.perf_counter()
        run_family(name, n, args.seed, counts, failures)
        done = sum(v for (f, _), v in counts.items() if f == name)
        print(f"{name}: {done} cases in {time.perf_counter() - t:.0f} s: "
              + ", ".join(f"{k} {v}" for (f, k), v in sorted(counts.items()) if f == name), flush=True)
    total = sum(counts.values())
    bad = sum(v for (_, k), v in counts.items() if k == "FAILURE")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\ntotal: {total} cases in {time.perf_counter() - t0:.0f} s; ok {sum(v for (_, k), v in counts.items() if k == 'ok')}, "
          f"caffe2mx errors {sum(v for (_, k), v in counts.items() if k == 'error')}, other failures {bad}")
    print(f"peak RSS of the whole run: {peak:.0f} MB (each case ran under a {tf.BUDGET} budget)")
    for (name, kind, msg), (value, tb) in failures.items():
        print(f"\n--- {name}: {kind}: {msg}\ninput: {value!r}"[:3000] + f"\n{tb}")
    return 1 if bad else 0


if __name__ == "__main__":
    os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")
    sys.exit(main())
