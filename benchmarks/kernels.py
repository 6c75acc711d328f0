"""Where the optimised model's time goes, kernel by kernel, next to ONNX Runtime: at 1 thread
and at --threads, so a gap to ONNX Runtime shows as either the kernels themselves (1 thread)
or how they scale across threads.

    .venv/bin/python benchmarks/kernels.py ../shared/fixtures/corpus/resnet50.prototxt --batch 1
    .venv/bin/python benchmarks/kernels.py                       # Attention-92, batch 1

MXNet: the optimised symbol bound by `bind_inference` (MKLDNN subgraph backend), every oneDNN
primitive timed by oneDNN itself (DNNL_VERBOSE=1); MXNet's own (non-oneDNN) operators and
the engine's overhead are the wall time per forward less the primitives ('outside oneDNN';
the verbose printing itself included, so read it as an upper bound).
ONNX Runtime: the optimised model's export, its per-node profile (enable_profiling). Each
(runtime, threads) pair runs in its own process (thread counts are read at import); per
kernel the minimum over --passes passes is kept (the least disturbed by other load), the
wall time is the median. Seeded weights (--seed), seeded U(-1, 1) input.
"""
import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARK = "===caffe2mx-kernels==="

WORKER = r'''
import ctypes, json, os, sys, tempfile, time
import numpy as np
import caffe2mx
runtime, prototxt, seed, batch, passes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
opt = caffe2mx.optimize(caffe2mx.convert(caffe2mx.read_net(prototxt), None, seed=seed))
(in_blob, in_var), = [(b, v) for b, v in opt.name_map["inputs"].items() if v in opt.input_names()]
shape = (batch,) + tuple(opt.name_map["input_shapes"][in_blob])[1:]
x = np.random.default_rng(1234).uniform(-1, 1, shape).astype(np.float32)
walls = []
if runtime == "mxnet":
    from caffe2mx.converter.optimize import bind_inference
    exe = bind_inference(opt, batch)
    exe.arg_dict[in_var][:] = x
    for _ in range(2):
        exe.forward(is_train=False)[0].wait_to_read()
    libc = ctypes.CDLL(None)
    for _ in range(passes):
        libc.printf(b"%s\n", sys.argv[6].encode()); libc.fflush(None)   # in oneDNN's own stream
        t = time.perf_counter(); exe.forward(is_train=False)[0].wait_to_read(); walls.append(time.perf_counter() - t)
    libc.fflush(None)
    print("WALLS", json.dumps(walls), flush=True)
else:
    import onnxruntime as ort
    from caffe2mx.converter.onnx_export import export_conversion
    tmp = tempfile.mkdtemp()
    export_conversion(opt, os.path.join(tmp, "m.onnx"))
    so = ort.SessionOptions(); so.intra_op_num_threads = int(os.environ["OMP_NUM_THREADS"])
    so.enable_profiling = True; so.profile_file_prefix = os.path.join(tmp, "prof"); so.log_severity_level = 3
    s = ort.InferenceSession(os.path.join(tmp, "m.onnx"), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    for _ in range(2 + passes):
        t = time.perf_counter(); s.run(None, {name: x}); walls.append(time.perf_counter() - t)
    print("WALLS", json.dumps(walls[2:]), flush=True)
    print("PROFILE", s.end_profiling(), flush=True)
'''


def _dnnl_kind(fields):
    prim, desc = fields[3], fields[-2]
    if prim == "convolution":
        return "convolution (depthwise)" if desc.startswith("g") else "convolution"
    return {"pooling_v2": "pooling", "softmax_v2": "softmax", "inner_product": "matmul / inner product",
            "sum": "element-wise", "eltwise": "element-wise", "binary": "element-wise"}.get(prim, prim)


def mxnet_kernels(out, passes):
    """{kind: ms per forward}, wall median (s): the per-position minimum over the passes."""
    walls = json.loads(next(line for line in out.splitlines() if line.startswith("WALLS"))[6:])
    chunks = out.split(MARK)[1:]
    per_pass = [[ln.split(",") for ln in c.splitlines() if ln.startswith("dnnl_verbose,exec")] for c in chunks]
    n = min(len(p) for p in per_pass)
    kinds = collections.defaultdict(float)
    for i in range(n):
        kinds[_dnnl_kind(per_pass[0][i])] += min(float(p[i][-1]) for p in per_pass)
    kinds["outside oneDNN (MXNet ops, engine)"] = max(0.0, statistics.median(walls) * 1e3 - sum(kinds.values()))
    return kinds, statistics.median(walls)


ORT_KIND = {"Conv": "convolution", "FusedConv": "convolution", "MaxPool": "pooling", "AveragePool": "pooling",
            "GlobalAveragePool": "pooling", "MatMul": "matmul / inner product", "FusedMatMul": "matmul / inner product",
            "Gemm": "matmul / inner product", "ReorderInput": "reorder", "ReorderOutput": "reorder",
            "Transpose": "reorder", "Add": "element-wise", "Mul": "element-wise", "Sum": "element-wise",
          "Softmax": "softmax", "Flatten": "reshape"}


def ort_kernels(out):
    walls = json.loads(next(line for line in out.splitlines() if line.startswith("WALLS"))[6:])
    prof = next(line for line in out.splitlines() if line.startswith("PROFILE"))[8:].strip()
    per = collections.defaultdict(list)
    ops = {}
    for e in json.loads(Path(prof).read_text()):
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per[e["name"]].append(e["dur"] / 1e3)
            ops[e["name"]] = e["args"].get("op_name", "?")
    kinds = collections.defaultdict(float)
    for node, ts in per.items():
        op = ops[node]
        kinds[ORT_KIND.get(op, op)] += min(ts[-len(walls):])
    kinds["outside the kernels"] = max(0.0, statistics.median(walls) * 1e3 - sum(kinds.values()))
    return kinds, statistics.median(walls)


def run(runtime, args, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MXNET_SUBGRAPH_BACKEND="NONE", MXNET_SUBGRAPH_VERBOSE="0")
    if runtime == "mxnet":
        env["DNNL_VERBOSE"] = env["MKLDNN_VERBOSE"] = "1"
    p = subprocess.run([sys.executable, "-c", WORKER, runtime, str(Path(args.prototxt).resolve()), str(args.seed),
                        str(args.batch), str(args.passes), MARK], env=env, capture_output=True, text=True, cwd=REPO)
    if p.returncode:
        raise SystemExit(f"{runtime} at {threads} threads failed:\n{p.stderr[-2000:]}")
    return p.stdout


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prototxt", nargs="?", default=str(REPO / "prototxts" / "attention92.prototxt"))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    load = os.getloadavg()
    results = {}
    for threads in sorted({1, args.threads}):
        results[("MXNet", threads)] = mxnet_kernels(run("mxnet", args, threads), args.passes)
        results[("ORT", threads)] = ort_kernels(run("ort", args, threads))
    load_end = os.getloadavg()
    cols = list(results)
    kinds = sorted({k for r in results.values() for k in r[0]}, key=lambda k: -results[cols[0]][0].get(k, 0))
    print(f"{Path(args.prototxt).stem}, batch {args.batch}: ms per forward (kernels: minimum over {args.passes} "
          f"passes; wall: median); load average {load[0]:.2f} -> {load_end[0]:.2f}")
    head = f"{'':<38}" + "".join(f"{f'{rt} {t}t':>12}" for rt, t in cols)
    print(head + "\n" + "-" * len(head))
    for k in kinds:
        print(f"{k:<38}" + "".join(f"{results[c][0].get(k, 0.0):>12.2f}" for c in cols))
    print(f"{'wall per forward':<38}" + "".join(f"{results[c][1] * 1e3:>12.1f}" for c in cols))
    if args.threads > 1:
        for rt in ("MXNet", "ORT"):
            one, many = results[(rt, 1)][1], results[(rt, args.threads)][1]
            print(f"{rt}: {args.threads} threads are {one / many:.2f}x one thread (wall)")


if __name__ == "__main__":
    main()
