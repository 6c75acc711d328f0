"""Entry point of one worker process of a `launch`ed job: `python -m
caffe2mx.mxmodels.training.worker OPTIONS.json` trains with the options in the file (the
launcher's own options removed) under the DMLC_* environment the launcher set."""
import json
import sys

from caffe2mx.converter.errors import Caffe2MXError


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m caffe2mx.mxmodels.training.worker OPTIONS.json", file=sys.stderr)
        return 2
    from .api import train
    with open(argv[0]) as f:
        options = json.load(f)
    try:
        train(**options)
    except Caffe2MXError as exc:
        print(f"caffe2mx train (worker): error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
