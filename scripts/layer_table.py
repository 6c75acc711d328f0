#!/usr/bin/env python3
"""Regenerate the README's supported-layers table from the layer handlers (`--check`: only
report whether it is up to date; exit 1 when stale)."""
import argparse
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    from caffe2mx.converter.layers.table import replace_in
    text = README.read_text(encoding="utf-8")
    new = replace_in(text)
    if args.check:
        if new != text:
            print(f"{README} is stale: run python scripts/layer_table.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        README.write_text(new, encoding="utf-8")
        print(f"updated {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
