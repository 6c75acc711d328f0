"""A memory budget: what a command will allocate, estimated from shapes before anything is.

Each command's estimate is built from the shaped net (no data is touched):
- weights: every learnable blob the handlers ask for (float32), or the caffemodel's size
  when that is larger (the reader keeps what it reads);
- activations: a forward pass in net order keeps a blob from its producer to its last
  reader (the net's outputs to the end); `peak` is the most alive at once, `all` the sum
  of every blob (verify keeps them all), plus each layer's own temporaries (its bottoms
  and tops twice over, and the im2col columns of a convolution: handler `workspace`);
- constants made while emitting (a pooling divisor map): at most one spatial plane;
- the copies each command makes: conversion holds the weights twice (NumPy and MXNet),
  ONNX export four times (NDArray, NumPy, initializer, serialized model), verify four
  times too (the conversion, the reference's float64 copies, an ONNX Runtime reference) and
  runs MXNet in float32 (every blob kept, and copied to NumPy for the comparison) and the
  NumPy reference in float64 side by side;
  seeded weights add a float32 forward pass (their calibration); and RUNTIME for MXNet's
  engine once it runs.

Memory that is not the command's (the interpreter, MXNet's library) is not counted: the
available memory the default limit is a share of is measured with it already loaded.

The limit is `--max-memory` (CLI) / `set_limit` / $CAFFE2MX_MAX_MEMORY, by default
DEFAULT_SHARE of the memory available when the command starts (MemAvailable, and the
cgroup's limit where one is set). Over the limit, the command is refused with a
ModelError naming the estimate's parts and the largest blob.
"""
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field

from .errors import ModelError, UsageError
from .layers import handler_for

DEFAULT_SHARE = 0.75
F32, F64 = 4, 8
#: what MXNet's engine takes once it runs anything (threads, allocator pools), measured ~10-50 MB
RUNTIME = 64 << 20
_SET_LIMIT = None  # bytes, or "none"; set by the CLI's --max-memory


def _meminfo_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _read_int(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return None if text == "max" else int(text)
    except (OSError, ValueError):
        return None


def _cgroup_headroom():
    """Bytes the cgroup still allows, where it sets a limit (v2, then v1)."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < (1 << 60):
            return max(limit - usage, 0)
    return None


def available_bytes():
    """Memory this process can still take: MemAvailable, capped by the cgroup's headroom."""
    values = [v for v in (_meminfo_available(), _cgroup_headroom()) if v is not None]
    return min(values) if values else None


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text):
    """Bytes from '8G', '512M', '1.5GiB', '2000000' (bytes) or '50%' (of available memory);
    'none' means no limit (returned as None)."""
    s = str(text).strip().lower()
    if s in ("none", "unlimited", "off"):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(%|[kmgt]?)(?:i?b)?", s)
    if not m:
        raise UsageError(f"--max-memory takes a size such as 8G, 512M, 50% (of available memory) or none, "
                         f"not {text!r}")
    value, unit = float(m.group(1)), m.group(2)
    if unit == "%":
        avail = available_bytes()
        if avail is None:
            raise UsageError("--max-memory N%: the available memory cannot be read on this system; give a size")
        return int(avail * value / 100)
    return int(value * _UNITS[unit])


def set_limit(value):
    """The process-wide limit: bytes, a size string, or None (back to the default)."""
    global _SET_LIMIT
    if value is None:
        _SET_LIMIT = None
    elif isinstance(value, str):
        parsed = parse_size(value)
        _SET_LIMIT = "none" if parsed is None else parsed
    else:
        _SET_LIMIT = int(value)


@contextmanager
def limited(value):
    """set_limit(value) for the duration of a `with` block (value None: leave it as it is)."""
    global _SET_LIMIT
    before = _SET_LIMIT
    if value is not None:
        set_limit(value)
    try:
        yield
    finally:
        _SET_LIMIT = before


def limit():
    """(bytes or None for no limit, where it comes from)."""
    if _SET_LIMIT is not None:
        return (None, "--max-memory none") if _SET_LIMIT == "none" else (_SET_LIMIT, "--max-memory")
    env = os.environ.get("CAFFE2MX_MAX_MEMORY")
    if env:
        b = parse_size(env)
        return b, "$CAFFE2MX_MAX_MEMORY"
    avail = available_bytes()
    if avail is None:
        return None, "no limit: available memory unknown"
    return int(avail * DEFAULT_SHARE), f"{DEFAULT_SHARE:.0%} of the {human(avail)} available"


def human(n):
    n = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"


@dataclass
class Estimate:
    """Bytes a command needs, by part, and its largest single allocation."""

    parts: dict = field(default_factory=dict)
    largest: tuple = (0, "")  # (bytes, description) of the largest blob (activation or weights)

    @property
    def total(self):
        return sum(self.parts.values())

    def add(self, part, nbytes):
        self.parts[part] = self.parts.get(part, 0) + int(nbytes)

    def see(self, nbytes, what):
        if nbytes > self.largest[0]:
            self.largest = (int(nbytes), what)


def _count(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _layer_temp(node, ins, outs):
    h = handler_for(node.type)
    extra = h.workspace(node, ins, outs) if h is not None and len(ins) == len(node.bottoms) else 0
    return 2 * (sum(_count(s) for s in ins) + sum(_count(s) for s in outs)) + int(extra)


def _where(graph, node):
    return f"layer '{node.name}' ({node.type})" + (f", line {node.line}" if node.line else "")


def forward_elements(graph, shapes, est, keep_all, size, label):
    """Elements alive at the peak of a forward pass (plus that layer's temporaries)."""
    last = {}
    for i, n in enumerate(graph.nodes):
        for b in n.bottoms:
            last[b] = i
    live = {b: _count(shapes[b]) for b in graph.inputs if b in shapes}
    for b, n in live.items():
        est.see(n * size, f"input '{b}' {list(shapes[b])}")
    alive = sum(live.values())
    peak = alive
    for i, node in enumerate(graph.nodes):
        ins = [shapes[b] for b in node.bottoms if b in shapes]
        outs = [shapes[t] for t in node.tops if t in shapes]
        temp = _layer_temp(node, ins, outs)
        for t, s in zip(node.tops, outs):
            c = _count(s)
            live[t] = c
            alive += c
            est.see(c * size, f"blob '{graph.caffe_blob(t)}' {list(s)} of {_where(graph, node)}")
        peak = max(peak, alive + temp)
        if not keep_all:
            for b in set(node.bottoms):
                if last.get(b) == i and b in live:
                    alive -= live.pop(b)
    est.add(label, peak * size)


def weight_bytes(graph, shapes, est):
    total = 0
    for node in graph.nodes:
        h = handler_for(node.type)
        if h is None:
            continue
        for i, s in enumerate(h.blob_shapes(node, [shapes[b] for b in node.bottoms])):
            nbytes = _count(s) * F32
            total += nbytes
            name = h.blob_names[i] if i < len(h.blob_names) else f"blob {i}"
            est.see(nbytes, f"the {name} blob {list(s)} of {_where(graph, node)}")
    return total


def estimate(net, command, caffemodel=None, seeded=None):
    """Estimate for `command` (convert, init-weights, verify, export-onnx, inspect) on a Net."""
    graph, shapes = net.graph, net.shapes
    est = Estimate()
    w = weight_bytes(graph, shapes, est)
    if caffemodel is not None:
        try:
            w = max(w, os.path.getsize(caffemodel))
        except OSError:
            pass
    seeded = caffemodel is None if seeded is None else seeded
    copies = {"inspect": 1, "convert": 2, "init-weights": 2, "verify": 4, "export-onnx": 4}[command]
    est.add("weights", w * copies)
    if command == "inspect":
        return est
    est.add("MXNet runtime", RUNTIME)
    if seeded:
        forward_elements(graph, shapes, est, keep_all=False, size=F32, label="seeding forward pass")
    if command == "verify":
        forward_elements(graph, shapes, est, keep_all=True, size=2 * F32,
                         label="MXNet forward, every blob kept and copied to NumPy")
        forward_elements(graph, shapes, est, keep_all=True, size=F64, label="NumPy reference, every blob kept")
    else:
        # constants made while emitting: a pooling divisor map is one spatial plane of a blob
        planes = [_count(s[-2:]) for s in shapes.values() if len(s) >= 2]
        est.add("emission constants", max(planes, default=0) * F32)
    return est


def check_bytes(est, what, file=None, limit_bytes=None):
    """Refuse when `est` exceeds the limit (explicit, else the process-wide one)."""
    lim, source = (limit_bytes, "the given limit") if limit_bytes is not None else limit()
    if lim is None or est.total <= lim:
        return est
    parts = ", ".join(f"{k} {human(v)}" for k, v in est.parts.items() if v)
    largest = f"; the largest blob is {est.largest[1]}: {human(est.largest[0])}" if est.largest[0] else ""
    raise ModelError(f"{what} would need about {human(est.total)} ({parts}){largest}; that is more than the memory "
                     f"limit of {human(lim)} ({source}). Raise it with --max-memory (e.g. --max-memory "
                     f"{_suggest(est.total)}) if the machine has that much", file=file)


def _suggest(n):
    g = n / (1 << 30)
    return f"{int(g) + 1}G" if g >= 1 else f"{int(n / (1 << 20)) + 1}M"


def check(net, command, caffemodel=None, seeded=None, limit_bytes=None):
    """Estimate `command` on `net` and refuse it (ModelError) above the limit."""
    est = estimate(net, command, caffemodel=caffemodel, seeded=seeded)
    return check_bytes(est, f"{command} of this net", file=net.file, limit_bytes=limit_bytes)
