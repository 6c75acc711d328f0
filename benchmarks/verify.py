"""Wall time of `caffe2mx verify --reference numpy` on a generated net, stage by stage.

    python benchmarks/verify.py [prototxts/attention92.prototxt] [--mode convert|model|both]

`convert`: the CLI as a user runs it on a prototxt with seeded weights (weights drawn and
BN-calibrated, converted, compared). `model`: a caffemodel and a converted PREFIX written
beforehand (untimed), then `verify NET W.caffemodel --model PREFIX`.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(argv):
    from caffe2mx.cli import main
    t = time.perf_counter()
    rc = main(argv)
    return rc, time.perf_counter() - t


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("prototxt", nargs="?", default=str(ROOT / "prototxts" / "attention92.prototxt"))
    p.add_argument("--mode", choices=["convert", "model", "both"], default="both")
    args = p.parse_args()
    import caffe2mx
    from caffe2mx.converter.pipeline import read_net, save
    from caffe2mx.seeding import write_init_weights
    from caffe2mx.verification import verify

    print(f"{args.prototxt}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    if args.mode in ("convert", "both"):
        rc, wall = run_cli(["verify", args.prototxt, "--reference", "numpy", "-q"])
        print(f"caffe2mx verify {args.prototxt} --reference numpy: exit {rc}, {wall:.1f} s wall")
    if args.mode in ("model", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            weights = Path(tmp) / "w.caffemodel"
            write_init_weights(read_net(args.prototxt), weights, seed=0)
            save(caffe2mx.convert(args.prototxt, str(weights)), Path(tmp) / "m")
            t = time.perf_counter()
            result = verify(args.prototxt, str(weights), model=str(Path(tmp) / "m"))
            wall = time.perf_counter() - t
            stages = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
            print(f"verify NET W.caffemodel --model PREFIX: {'PASS' if result.outcome.passed else 'FAIL'} "
                  f"({len(result.outcome.rows)} blobs), {wall:.1f} s wall ({stages})")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
