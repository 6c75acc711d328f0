"""Print the path of the standalone Caffe dump script, or write a copy of it.

Run that script inside your own Caffe installation (pycaffe, any fork; it needs only
numpy and caffe) to save every blob after a forward pass:
    python caffe_dump.py NET.prototxt WEIGHTS.caffemodel -o acts.npz [--input x.npy]
then compare with `caffe2mx verify NET.prototxt WEIGHTS.caffemodel --reference acts.npz`.
"""
import shutil
from pathlib import Path

from caffe2mx.converter.errors import UsageError
from caffe2mx.converter.staging import Staging

from ._options import add_force

NAME = "dump-script"
HELP = "the standalone script that dumps Caffe activations for `verify --reference`"


def script_path():
    import caffe2mx.verify
    return Path(caffe2mx.verify.__file__).resolve().parent / "scripts" / "caffe_dump.py"


def add_arguments(p):
    p.add_argument("-o", "--output", metavar="FILE", help="write a copy of the script to FILE instead of printing its path")
    add_force(p)


def run(args):
    src = script_path()
    if not src.is_file():
        raise UsageError(f"the dump script is missing from this installation ({src})")
    if args.output is None:
        print(src)
        return 0
    out = Path(args.output)
    if out.is_dir():
        out = out / src.name
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent}: directory does not exist")
    with Staging([out], force=args.force) as st:
        shutil.copyfile(src, st.path(out))
        st.commit()
    print(f"wrote {out}")
    return 0
