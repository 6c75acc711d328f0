"""caffe2mx: Caffe (incl. the Residual Attention Network fork) to MXNet, with proof of parity.

The three code folders install under one namespace: converter/ -> caffe2mx.converter,
verify/ -> caffe2mx.verify, mxmodels/ -> caffe2mx.mxmodels.
"""
import re

from setuptools import find_packages, setup

FOLDERS = {"caffe2mx": "caffe2mx", "caffe2mx.converter": "converter",
           "caffe2mx.verify": "verify", "caffe2mx.mxmodels": "mxmodels"}


def packages():
    found = []
    for pkg, folder in FOLDERS.items():
        found.append(pkg)
        found += [f"{pkg}.{sub}" for sub in find_packages(folder)]
    return found


def package_dir():
    mapping = dict(FOLDERS)
    for pkg in packages():
        top = next(p for p in sorted(FOLDERS, key=len, reverse=True) if pkg == p or pkg.startswith(p + "."))
        mapping[pkg] = FOLDERS[top] + pkg[len(top):].replace(".", "/")
    return mapping


CORE = [
    "numpy>=1.21,<1.24",          # mxnet 1.9.1 breaks on numpy >= 1.24
    "protobuf>=3.20.2",           # whatever onnx pulls in; caffe.desc loads on 3.20 .. 7.x
    "onnx>=1.14,<1.17",
    "graphviz>=0.8.1,<0.9",       # mxnet 1.9.1 pins graphviz < 0.9
    "threadpoolctl>=3.1",         # verify: one BLAS thread while MXNet and the NumPy reference run side by side
]

TRAIN = ["scikit-learn>=1.3,<1.6", "matplotlib>=3.7,<3.10", "tqdm>=4.60"]

setup(
    name="caffe2mx",
    version=re.search(r'VERSION = "([^"]+)"', open("converter/version.py").read()).group(1),
    description="Convert Caffe networks (BVLC and the Residual Attention Network fork) to "
                "Apache MXNet and ONNX, and verify numerical parity layer by layer.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.8,<3.12",
    packages=packages(),
    package_dir=package_dir(),
    package_data={"caffe2mx.converter.proto": ["caffe.proto", "caffe.desc"],
                  "caffe2mx.verify": ["templates/*", "scripts/*"]},
    install_requires=CORE,
    extras_require={
        # Exactly one MXNet build: both wheels provide the `mxnet` module.
        "cpu": ["mxnet==1.9.1"],
        "gpu": ["mxnet-cu112==1.9.1"],
        "onnx": ["onnxruntime>=1.17,<1.20"],
        # `export-onnx --simplify`; onnxsim is not used by default: it pulls in numpy 2.
        "simplify": ["onnxoptimizer>=0.4"],
        # `caffe2mx quantize --calib-mode entropy`: MXNet's KL threshold search imports scipy.stats
        "int8": ["scipy>=1.9,<1.14"],
        # `caffe2mx train`: scikit-learn's bundled digits (demo data), matplotlib (learning
        # curve), tqdm (progress bar). Horovod is optional and installed by hand (`--kvstore horovod`).
        "train": TRAIN,
        # `--proto my_caffe.proto`: a fork's parameter messages read from .proto text (pure Python);
        # without it --proto takes a descriptor set written by protoc
        "proto": ["proto-schema-parser>=2.1,<3"],
        "test": ["pytest>=7", "onnxruntime>=1.17,<1.20", "grpcio-tools>=1.60", "onnxoptimizer>=0.4",
                 "proto-schema-parser>=2.1,<3",
                 "hypothesis>=6.100", "pytest-xdist>=3.5"] + TRAIN,
        # hypothesis: property-based fuzzing of nets and files; pytest-xdist: `make test` runs the
        # suite on two worker processes (most tests are single-threaded Python, so this halves it)
    },
    entry_points={"console_scripts": [
        "caffe2mx=caffe2mx.cli:main",
        "convert=caffe2mx.cli:convert_main",
    ]},
)
