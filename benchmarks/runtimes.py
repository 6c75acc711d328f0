"""One side-by-side table of every way to run a converted net on this CPU: throughput at
each batch size, GFLOP/s against the machine's peak, and how far each output is from the
faithful model's, so a fast but wrong runtime shows.

    .venv/bin/python benchmarks/runtimes.py                                # Attention-92, batch 1 and 8
    .venv/bin/python benchmarks/runtimes.py ../shared/fixtures/corpus/resnet50.prototxt --rounds 9
    .venv/bin/python benchmarks/runtimes.py NET.prototxt NET.caffemodel --threads 4 --no-int8

Rows (those that apply): the faithful MXNet symbol (bound with the MKLDNN subgraph backend,
as `simple_bind`/Module do by default in MXNet 1.9.1), the same at MXNet's default thread
count (a worker process with no thread setting, timed in the same rounds), the optimised
symbol (`convert --optimize`), the hybridized Gluon zoo model whose structure matches the
net, the int8 model (`caffe2mx quantize`, calibrated on --calib seeded inputs), ONNX Runtime
on the exported faithful and optimised models, and real Caffe when pycaffe is importable.

Threads: every runtime gets --threads (default: all cores). MXNet reads OMP_NUM_THREADS
when it is imported, so this script sets it first; left alone, MXNet runs one thread per
two cores (it assumes hyper-threading), i.e. ONE thread on a 2-core machine, while ONNX
Runtime uses every physical core. MXNET_CPU_WORKER_NTHREADS (default 1) is how many
operators run at once; raising it only helps nets with independent branches, each branch
then getting OMP_NUM_THREADS threads.

Timing: --rounds rounds; in each round every runtime runs once per batch size, in turn
(interleaved, so a load change on a shared machine hits all of them alike), after
--warmup untimed passes; the table shows medians. The load average is printed before and
after. The top operators by time (MXNet's profiler, per operator, not bulked) of the
faithful, optimised and int8 models follow, at --profile-batch.

Parity: every runtime's output on the same seeded batch is compared with the faithful
symbol run without any subgraph backend (as `verify` runs it): max relative error
|a - b| / max(|b|, rms(b)) and top-1 agreement; then the optimised and int8 models are
compared on --eval seeded inputs (max relative error, top-1 agreement, max probability
difference), next to the float model's own top-1 agreement with itself under input noise
of 1e-4, which shows how much a net with seeded weights amplifies any perturbation.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_NET = REPO / "prototxts" / "attention92.prototxt"


ROWS = ("faithful", "default-threads", "optimised", "zoo", "int8", "ort", "ort-optimised", "caffe")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prototxt", nargs="?", default=str(DEFAULT_NET))
    ap.add_argument("caffemodel", nargs="?", help="trained weights (default: seeded weights, --seed)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the seeded weights (default 0)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds (medians reported; default 7)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed passes per runtime and batch (default 2)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="threads for every runtime (default: all %(default)s cores); 0 = each runtime's default")
    ap.add_argument("--no-int8", dest="int8", action="store_false", help="leave out the int8 row")
    ap.add_argument("--calib", type=int, default=32, help="seeded calibration inputs for int8 (default 32)")
    ap.add_argument("--calib-mode", default="naive", choices=["naive", "entropy"])
    ap.add_argument("--calib-batch", type=int, default=2,
                    help="batch size of the calibration passes (every layer's output is kept: memory; default 2)")
    ap.add_argument("--eval", type=int, default=200, help="seeded inputs for the parity section (default 200)")
    ap.add_argument("--zoo", default="auto", help="Gluon zoo model to compare (default: the one named like the "
                    "prototxt, if its structure matches); 'none' to leave it out")
    ap.add_argument("--no-default-threads-row", dest="default_threads_row", action="store_false",
                    help="leave out the faithful symbol at MXNet's default thread count")
    ap.add_argument("--rows", default=",".join(ROWS),
                    help=f"which rows to run, comma-separated (default all: {','.join(ROWS)})")
    ap.add_argument("--profile-batch", type=int, default=1)
    ap.add_argument("--top", type=int, default=8, help="operators listed per profiled model (default 8)")
    ap.add_argument("--json", metavar="FILE", help="also write every measurement here")
    args = ap.parse_args(argv)
    args.rows = set(args.rows.split(","))
    unknown = args.rows - set(ROWS)
    if unknown:
        ap.error(f"unknown rows {', '.join(sorted(unknown))}; choose from {', '.join(ROWS)}")
    if not args.int8:
        args.rows.discard("int8")
    return args


def configure_threads(threads):
    """Before MXNet is imported: OMP_NUM_THREADS is read once, at import."""
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    # every backend is applied explicitly below, so nothing depends on MXNet's default
    os.environ["MXNET_SUBGRAPH_BACKEND"] = "NONE"
    os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")


def peak_gflops(threads):
    """(GFLOP/s, how it was estimated): cores x clock x float32 FLOP per cycle (FMA units x lanes x 2)."""
    flags, mhz = set(), None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "flags" and not flags:
                flags = set(value.split())
            if key.strip() == "cpu MHz" and mhz is None:
                mhz = float(value)
    except OSError:
        return None, "unknown (no /proc/cpuinfo)"
    if mhz is None:
        return None, "unknown clock"
    if "avx512f" in flags:
        per_cycle, isa = 64, "AVX-512 + FMA: 2 x 16 lanes x 2"
    elif "avx2" in flags and "fma" in flags:
        per_cycle, isa = 32, "AVX2 + FMA: 2 x 8 lanes x 2"
    elif "avx" in flags:
        per_cycle, isa = 16, "AVX: 8 lanes x (add + mul)"
    else:
        per_cycle, isa = 8, "SSE: 4 lanes x (add + mul)"
    cores = threads or os.cpu_count()
    return cores * mhz / 1000 * per_cycle, f"{cores} cores x {mhz / 1000:.2f} GHz x {per_cycle} FLOP/cycle ({isa})"


@dataclass
class Row:
    label: str
    run: dict                       # batch -> callable returning the first output as a NumPy array
    times: dict = field(default_factory=dict)
    cpu: dict = field(default_factory=dict)   # process CPU seconds per forward (all threads)
    parity: dict = field(default_factory=dict)
    note: str = ""


def mxnet_row(label, conv, batches, in_var, inputs, backend="MKLDNN"):
    from caffe2mx.converter.optimize import bind_inference
    runs = {}
    for b in batches:
        exe = bind_inference(conv, b, backend=backend)
        exe.arg_dict[in_var][:] = inputs[b]

        def run(exe=exe):
            return exe.forward(is_train=False)[0].asnumpy()
        runs[b] = run
    return Row(label, runs)


def ort_row(label, conv, batches, in_blob, inputs, threads, tmp):
    from caffe2mx.converter.onnx_export import OnnxRunner, export_conversion
    path = Path(tmp) / f"{label.replace(' ', '_')}.onnx"
    export_conversion(conv, path)
    runner = OnnxRunner(path, blobs=[], threads=threads or None)
    out_blob = next(iter(runner.outputs))
    return Row(label, {b: (lambda b=b: runner.run({in_blob: inputs[b]})[out_blob]) for b in batches})


def zoo_row(name, faithful, batches, inputs):
    """The hybridized Gluon zoo model holding the conversion's own weights, or (None, why)."""
    import mxnet as mx
    from caffe2mx.converter.caffemodel import LayerBlobs
    from caffe2mx.mxmodels import get_model, list_models
    from caffe2mx.mxmodels.caffe_bridge import CaffeBridgeError, load_caffe
    if name == "none":
        return None, "left out (--zoo none)"
    if name == "auto":
        name = Path(faithful.name_map["prototxt"]).stem.lower().replace("-", "").replace("_", "")
        if name not in list_models():
            return None, "no zoo model is named like the prototxt"
    model = get_model(name)
    weights = {n.name: LayerBlobs(n.name, n.type, n.blobs, (False,) * len(n.blobs))
               for n in faithful.net.graph.nodes if n.blobs}
    try:
        load_caffe(model, faithful.net, weights, blob3_mode=faithful.name_map["options"]["bn_blob3"])
    except CaffeBridgeError as exc:
        return None, f"zoo model {name} does not match the net ({str(exc).splitlines()[1].strip()})"
    model.hybridize(backend="MKLDNN", static_alloc=True, static_shape=True)
    arrays = {b: mx.nd.array(inputs[b]) for b in batches}
    if faithful.net.graph.nodes[-1].type == "Softmax":  # the zoo models end at the logits
        return Row(f"Gluon zoo {name} (hybridized)", {b: (lambda b=b: mx.nd.softmax(model(arrays[b])).asnumpy())
                                                     for b in batches}), ""
    return Row(f"Gluon zoo {name} (hybridized)", {b: (lambda b=b: model(arrays[b]).asnumpy()) for b in batches}), ""


WORKER = r"""
import os, sys, time, numpy as np
os.environ.pop("OMP_NUM_THREADS", None)
os.environ["MXNET_SUBGRAPH_BACKEND"] = "NONE"
import caffe2mx
from caffe2mx.converter.optimize import bind_inference
conv = caffe2mx.load(sys.argv[1])
inputs = np.load(sys.argv[2])
var = conv.input_names()[0]
exes = {}
for b in [int(v) for v in sys.argv[3].split(",")]:
    exes[b] = bind_inference(conv, b)
    exes[b].arg_dict[var][:] = inputs[str(b)]
print("ready", flush=True)
for line in sys.stdin:
    b = int(line)
    t0, c0 = time.perf_counter(), time.process_time()
    out = exes[b].forward(is_train=False)[0].asnumpy()
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    np.save(sys.argv[2] + ".out.npy", out)
    print(dt, dc, flush=True)
"""


class DefaultThreadsWorker:
    """The faithful model in a process that leaves MXNet's thread count alone; each request
    times one forward there, so the row is measured in the same interleaved rounds."""

    def __init__(self, prefix, inputs, batches, tmp):
        self.inputs_file = str(Path(tmp) / "inputs.npz")
        np.savez(self.inputs_file, **{str(b): inputs[b] for b in batches})
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MXNET_OMP_MAX_THREADS")}
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, str(prefix), self.inputs_file,
                                      ",".join(map(str, batches))], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the default-threads worker did not start")
        self.last = None

    def time_one(self, batch):
        """(wall, process CPU) seconds of one forward in the worker."""
        self.proc.stdin.write(f"{batch}\n")
        self.proc.stdin.flush()
        wall, cpu = self.proc.stdout.readline().split()
        return float(wall), float(cpu)

    def output(self, batch):
        self.time_one(batch)
        return np.load(self.inputs_file + ".out.npy")

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def caffe_row(prototxt, caffemodel, faithful, batches, inputs, in_blob, tmp):
    """Real Caffe (pycaffe), when importable; seeded weights are written to a caffemodel first."""
    try:
        import caffe
    except ImportError:
        return None, "pycaffe is not importable"
    if caffemodel is None:
        from caffe2mx.converter.caffemodel import write_caffemodel
        caffemodel = str(Path(tmp) / "seeded.caffemodel")
        nodes = [n for n in faithful.net.graph.nodes if n.blobs]
        layers = [m for n in nodes for m in (n.fused or (n,))]
        write_caffemodel(caffemodel, faithful.net.graph.name, [(m.param, list(m.blobs)) for m in layers])
    caffe.set_mode_cpu()
    nets = {}
    for b in batches:
        net = caffe.Net(str(prototxt), str(caffemodel), caffe.TEST)
        net.blobs[in_blob].reshape(*inputs[b].shape)
        net.reshape()
        net.blobs[in_blob].data[...] = inputs[b]
        nets[b] = net
    out_blob = next(iter(faithful.name_map["outputs"]))
    return Row("Caffe (pycaffe)", {b: (lambda b=b: nets[b].forward()[out_blob].copy()) for b in batches}), ""


def profile(conv, batch, in_var, x, top, backend="MKLDNN"):
    """[(operator, ms per forward, share)] from MXNet's profiler, operators not bulked."""
    import mxnet as mx
    from caffe2mx.converter.optimize import bind_inference
    os.environ["MXNET_EXEC_BULK_EXEC_INFERENCE"] = "0"
    try:
        exe = bind_inference(conv, batch, backend=backend)
    finally:
        os.environ.pop("MXNET_EXEC_BULK_EXEC_INFERENCE", None)
    exe.arg_dict[in_var][:] = x
    for _ in range(2):
        exe.forward(is_train=False)[0].wait_to_read()
    passes = 5
    mx.profiler.set_config(profile_all=True, aggregate_stats=True, filename=os.devnull)
    mx.profiler.set_state("run")
    for _ in range(passes):
        exe.forward(is_train=False)[0].wait_to_read()
    mx.nd.waitall()
    mx.profiler.set_state("stop")
    stats = json.loads(mx.profiler.dumps(reset=True, format="json"))["Time"].get("operator", {})
    skip = {"WaitForVar", "DeleteVariable"}
    ops = [(k, v["Total"] / passes, v["Count"] // passes) for k, v in stats.items() if k not in skip]
    total = sum(t for _, t, _ in ops) or 1.0
    ops.sort(key=lambda r: -r[1])
    return [(k, t, n, t / total) for k, t, n in ops[:top]], total


def predict_all(fn_for_batch, x, batch):
    from caffe2mx.converter.optimize_int8 import in_batches
    return in_batches(fn_for_batch, x, batch)


def main(argv=None):
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    configure_threads(args.threads)
    import mxnet as mx
    import caffe2mx
    from caffe2mx.converter.inspect import inspect_net, totals
    from caffe2mx.converter.model_files import save
    from caffe2mx.converter.optimize import bind_inference
    from caffe2mx.converter.optimize_int8 import agreement, quantize_conversion
    from caffe2mx.verify.metrics import compare

    load_start = os.getloadavg()
    t0 = time.perf_counter()
    net = caffe2mx.read_net(args.prototxt)
    faithful = caffe2mx.convert(net, args.caffemodel, seed=args.seed)
    opt = caffe2mx.optimize(faithful)
    macs = totals(inspect_net(net))["macs"]
    (in_blob, in_var), = [(b, v) for b, v in faithful.name_map["inputs"].items() if v in faithful.input_names()]
    shape = tuple(faithful.name_map["input_shapes"][in_blob])
    rng = np.random.default_rng(1234)
    inputs = {b: rng.uniform(-1, 1, (b,) + shape[1:]).astype(np.float32) for b in args.batches}
    peak, peak_how = peak_gflops(args.threads)
    notes = []

    with tempfile.TemporaryDirectory() as tmp:
        rows = [mxnet_row("MXNet faithful symbol", faithful, args.batches, in_var, inputs)]
        worker = None
        if "default-threads" in args.rows and args.default_threads_row and args.threads:
            save(faithful, Path(tmp) / "faithful")
            worker = DefaultThreadsWorker(Path(tmp) / "faithful", inputs, args.batches, tmp)
            rows.append(Row("MXNet faithful, default threads", {b: (lambda b=b: worker.output(b))
                                                                for b in args.batches}))
        if "optimised" in args.rows:
            rows.append(mxnet_row("MXNet optimised symbol", opt, args.batches, in_var, inputs))
        if "zoo" in args.rows:
            zoo, why = zoo_row(args.zoo, faithful, args.batches, inputs)
            rows.append(zoo) if zoo else notes.append(f"Gluon zoo row: {why}")
        qconv = None
        if "int8" in args.rows:
            calib = np.random.default_rng(99).uniform(-1, 1, (args.calib,) + shape[1:]).astype(np.float32)
            tq = time.perf_counter()
            qconv = quantize_conversion(opt, calib, calib_mode=args.calib_mode, batch_size=args.calib_batch)
            notes.append(f"int8: calibrated ({args.calib_mode}) on {args.calib} seeded inputs in "
                         f"{time.perf_counter() - tq:.0f} s")
            rows.append(mxnet_row("MXNet int8 (oneDNN)", qconv, args.batches, in_var, inputs, backend=None))
        if "ort" in args.rows:
            rows.append(ort_row("ONNX Runtime faithful export", faithful, args.batches, in_blob, inputs, args.threads,
                                tmp))
        if "ort-optimised" in args.rows:
            rows.append(ort_row("ONNX Runtime optimised export", opt, args.batches, in_blob, inputs, args.threads, tmp))
        if "caffe" in args.rows:
            caffe, why = caffe_row(args.prototxt, args.caffemodel, faithful, args.batches, inputs, in_blob, tmp)
            rows.append(caffe) if caffe else notes.append(f"Caffe row: {why}")
        setup_s = time.perf_counter() - t0

        # parity on the timed batches, against the faithful symbol without a subgraph backend
        reference = {}
        for b in args.batches:
            exe = bind_inference(faithful, b, backend=None)
            exe.arg_dict[in_var][:] = inputs[b]
            reference[b] = exe.forward(is_train=False)[0].asnumpy()
            del exe
        for row in rows:
            for b in args.batches:
                out = row.run[b]()
                d = compare(out.reshape(reference[b].shape), reference[b])
                same = (out.reshape(b, -1).argmax(1) == reference[b].reshape(b, -1).argmax(1)).mean()
                row.parity[b] = (d.max_rel, float(same))

        # interleaved timing
        for row in rows:
            for b in args.batches:
                for _ in range(args.warmup):
                    row.run[b]()
        round_load = []
        for _ in range(args.rounds):
            for b in args.batches:
                for row in rows:
                    if worker is not None and row.label.endswith("default threads"):
                        wall, cpu = worker.time_one(b)
                    else:
                        t, c = time.perf_counter(), time.process_time()
                        row.run[b]()
                        wall, cpu = time.perf_counter() - t, time.process_time() - c
                    row.times.setdefault(b, []).append(wall)
                    row.cpu.setdefault(b, []).append(cpu)
            round_load.append(os.getloadavg()[0])
        if worker is not None:
            worker.close()

    load_end = os.getloadavg()
    for r in rows:  # the timed executors hold activations for every batch size: free them first
        r.run.clear()
    import gc
    gc.collect()
    med = {(r.label, b): statistics.median(r.times[b]) for r in rows for b in args.batches}
    cpu = {(r.label, b): statistics.median(r.cpu[b]) for r in rows for b in args.batches}

    def ratio(label, other, b):
        return med[(other, b)] / med[(label, b)] if (other, b) in med else float("nan")

    name = Path(args.prototxt).stem
    print(f"{name}: {macs / 1e9:.2f} G multiply-adds per image; {os.cpu_count()} cores, "
          f"threads {args.threads or 'runtime defaults'}; peak estimate "
          f"{peak:.0f} GFLOP/s ({peak_how})" if peak else f"{name}: peak unknown ({peak_how})")
    print(f"load average before {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}, after "
          f"{load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}; 1-min load per round "
          + " ".join(f"{v:.1f}" for v in round_load) + f"; set-up {setup_s:.0f} s")
    print(f"medians of {args.rounds} interleaved rounds after {args.warmup} warm-up passes; 'cpu ms': process "
          f"CPU time per batch (all threads, spinning included; less sensitive to other load than wall time); "
          f"'x ORT' and 'x faithful': throughput ratios at the same batch; errors vs the faithful symbol (no backend)")
    head = (f"{'runtime':<34}{'batch':>6}{'img/s':>9}{'ms/batch':>10}{'cpu ms':>9}{'GFLOP/s':>9}{'%peak':>7}"
            f"{'x ORT':>7}{'x faithful':>11}{'max rel err':>13}{'top-1 same':>11}")
    print(head)
    print("-" * len(head))
    for b in args.batches:
        for r in rows:
            sec = med[(r.label, b)]
            gflops = 2 * macs * b / sec / 1e9
            err, same = r.parity[b]
            print(f"{r.label:<34}{b:>6}{b / sec:>9.2f}{sec * 1000:>10.1f}{cpu[(r.label, b)] * 1000:>9.0f}{gflops:>9.1f}"
                  f"{(100 * gflops / peak if peak else float('nan')):>7.0f}"
                  f"{ratio(r.label, 'ONNX Runtime faithful export', b):>7.2f}"
                  f"{ratio(r.label, 'MXNet faithful symbol', b):>11.2f}{err:>13.2e}{100 * same:>10.0f}%")
    for n in notes:
        print(n)

    # where the time goes, before and after
    x = inputs.get(args.profile_batch)
    if x is None:
        x = np.random.default_rng(5).uniform(-1, 1, (args.profile_batch,) + shape[1:]).astype(np.float32)
    profiled = [("faithful symbol", faithful, "MKLDNN"), ("optimised symbol", opt, "MKLDNN")] if args.top else []
    if qconv is not None and profiled:
        profiled.append(("int8", qconv, None))
    if profiled:
        print(f"\ntop operators by time (MXNet profiler, batch {args.profile_batch}, ms per forward)")
    for label, conv, backend in profiled:
        ops, total = profile(conv, args.profile_batch, in_var, x, args.top, backend)
        print(f"  {label}: {total:.1f} ms in operators")
        for op, ms, count, share in ops:
            print(f"    {op:<36}{count:>5} x {ms:>9.1f} ms {100 * share:>5.1f}%")

    # parity on many inputs
    parity = {}
    if args.eval:
        evals = np.random.default_rng(2024).uniform(-1, 1, (args.eval,) + shape[1:]).astype(np.float32)
        b = max(args.batches)
        ref_exe = bind_inference(faithful, b, backend=None)

        def reference_fn(chunk):
            ref_exe.arg_dict[in_var][:] = chunk
            return ref_exe.forward(is_train=False)[0].asnumpy()
        ref = predict_all(reference_fn, evals, b)
        flat = ref.reshape(len(ref), -1)
        top2 = np.sort(flat, axis=1)[:, -2:]
        classes = len(set(flat.argmax(1).tolist()))
        print(f"\nparity on {args.eval} seeded U(-1,1) inputs, against the faithful symbol "
              f"(max rel err over all outputs; top-1 agreement; max |difference|); the float model predicts "
              f"{classes} distinct classes on them, median top-1 - top-2 margin {np.median(top2[:, 1] - top2[:, 0]):.3g}")
        candidates = [("faithful symbol + MKLDNN backend", faithful, "MKLDNN"),
                      ("optimised symbol + MKLDNN backend", opt, "MKLDNN")]
        if qconv is not None:
            candidates.append(("int8", qconv, None))
        for label, conv, backend in candidates:
            exe = bind_inference(conv, b, backend=backend)

            def fn(chunk, exe=exe):
                exe.arg_dict[in_var][:] = chunk
                return exe.forward(is_train=False)[0].asnumpy()
            out = predict_all(fn, evals, b)
            del exe, fn
            worst = max(compare(o, r).max_rel for o, r in zip(out, ref))
            a = agreement(ref, out)
            rel_l2 = float(np.linalg.norm(out - ref) / np.linalg.norm(ref))
            parity[label] = dict(a, max_rel_err=worst, rel_l2=rel_l2)
            print(f"  {label:<36} max rel err {worst:.2e}  ||diff||/||ref|| {rel_l2:.1e}  "
                  f"top-1 {100 * a['top1_agreement']:.1f}%  max |diff| {a['max_prob_diff']:.3g}")
        noisy = evals + np.random.default_rng(7).normal(0, 1e-4, evals.shape).astype(np.float32)
        a = agreement(ref, predict_all(reference_fn, noisy, b))
        parity["float, input noise 1e-4"] = a
        print(f"  {'float model, input + N(0, 1e-4) noise':<36} top-1 {100 * a['top1_agreement']:.1f}%  "
              f"max |diff| {a['max_prob_diff']:.3g}   (how strongly the net amplifies a perturbation)")

    import resource
    print(f"\npeak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "net": name, "macs": macs, "threads": args.threads, "peak_gflops": peak, "load_start": load_start,
            "load_end": load_end, "round_load": round_load,
            "rows": [{"label": r.label, "times": {str(b): r.times[b] for b in args.batches},
                      "cpu": {str(b): r.cpu[b] for b in args.batches},
                      "parity": {str(b): r.parity[b] for b in args.batches}} for r in rows],
            "parity": parity, "eval_classes": classes if args.eval else None, "notes": notes}, indent=1))


if __name__ == "__main__":
    main()
