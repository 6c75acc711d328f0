"""Cut a converted MXNet symbol at Caffe blob boundaries and run the pieces one at a time.

A piece is the MXNet nodes the name map says a group of Caffe layers own (usually one
layer; a fused BatchNorm+Scale is one piece), with every value it reads from outside the
group replaced by a fed variable. The same piece runs twice: teacher forced (fed the
reference's own bottoms, so the error it shows is the layer's own) and free running (fed
MXNet's own earlier outputs, which chains the pieces into the whole net). Running piece
by piece means only the blobs still needed are held, whatever the net's depth and size.

The pieces are cut from the symbol as saved, never re-emitted from the graph: a fault in
the converted files (an edited attribute, a wrong weight) is what gets measured.
"""
import json
import re

import numpy as np

from .mxnet_run import _mx  # backend off: fused outputs would hide layers


_OUTPUT = re.compile(r"^(?P<node>.*)_output(?P<index>\d*)$")


class PieceError(Exception):
    """The converted symbol cannot be cut at the name map's blobs (a malformed model)."""


class SymbolPieces:
    """The converted model (symbol, params, name map) ready to be cut into pieces."""

    def __init__(self, symbol, arg_params, aux_params, name_map):
        self.mx = _mx()
        data = json.loads(symbol.tojson())
        self.nodes = data["nodes"]
        self.attrs = data.get("attrs", {})
        self.index = {n["name"]: i for i, n in enumerate(self.nodes)}
        self.owner = dict(name_map.get("nodes") or {})
        self.args = {k: self._nd(v) for k, v in arg_params.items()}
        self.auxs = {k: self._nd(v) for k, v in aux_params.items()}
        self.input_vars = dict(name_map["inputs"])  # Caffe input blob -> variable name
        inputs = set(self.input_vars.values())
        self.entry, self.missing = {}, {}
        for vid, v in name_map["versions"].items():
            if v["mxnet"] in inputs and v["mxnet"] not in self.index:
                continue  # a net input MXNet never reads (an Interp's size reference)
            try:
                self.entry[vid] = self._entry(v["mxnet"])
            except PieceError:
                self.missing[vid] = v["mxnet"]  # the layer making it is wrong, not the whole model
        self._names = {n["name"] for n in self.nodes}

    def _nd(self, value):
        return value if isinstance(value, self.mx.nd.NDArray) else self.mx.nd.array(np.asarray(value, np.float32))

    def _entry(self, output_name):
        """(node index, output index) of an output name as MXNet lists it."""
        if output_name in self.index:
            return self.index[output_name], 0
        m = _OUTPUT.match(output_name)
        if m and m["node"] in self.index:
            return self.index[m["node"]], int(m["index"] or 0)
        raise PieceError(f"the symbol has no output named {output_name!r} (named in the name map)")

    def has(self, version):
        return version in self.entry or version in self.missing

    def piece(self, layers, bottoms, tops, forced=False):
        """A Piece computing `tops` (version ids) of the Caffe `layers` from `bottoms` (version ids).

        Free running, only what comes from outside `layers` is fed; `forced`, every one of
        `bottoms` is, even where one of `layers` makes it (each layer reads given values).
        """
        lost = [t for t in tops if t in self.missing]
        if lost:
            raise PieceError(f"the converted symbol has no output {self.missing[lost[0]]!r} for blob {lost[0]!r} "
                             f"(named in the name map): its layer was lost or rewired")
        owned = set(layers)
        at = {}
        for b in bottoms:
            if b in self.entry:
                at.setdefault(self.entry[b], b)
        keep, feeds, stack = set(), {}, []
        heads = []  # (entry, fed?): a top that is also a fed bottom (forced) is still computed
        for t in tops:
            e = self.entry[t]
            fed = self._cut(e, owned, at, False)
            if fed:
                feeds[e] = at[e]
            else:
                stack.append(e[0])
            heads.append((e, fed))
        while stack:
            nid = stack.pop()
            if nid in keep:
                continue
            keep.add(nid)
            for src, idx, _ in self.nodes[nid]["inputs"]:
                e = (src, idx)
                if self._cut(e, owned, at, forced):
                    feeds[e] = at[e]
                elif src not in keep:
                    stack.append(src)
        return Piece(self, sorted(keep), feeds, heads)

    def _cut(self, entry, owned, at, forced):
        """Is this value fed from outside the piece? Error if the piece reads what it may not."""
        nid, _ = entry
        node = self.nodes[nid]
        if node["op"] == "null":
            if node["name"] in self.args or node["name"] in self.auxs:
                return False
            if entry in at:
                return True
            raise PieceError(f"MXNet variable {node['name']!r} has no value (no parameter or input of that name)")
        if forced and entry in at:
            return True
        if self.owner.get(node["name"]) in owned:
            return False
        if entry in at:
            return True
        who = self.owner.get(node["name"], "no layer")
        raise PieceError(f"layer(s) {', '.join(sorted(owned))} read MXNet node {node['name']!r} of {who}, which "
                         f"is not one of their bottoms")


class Piece:
    """One MXNet operator graph for a piece; call it with {bottom version: array}."""

    def __init__(self, pieces, keep, feeds, heads):
        mx = pieces.mx
        self.mx = mx
        nodes = pieces.nodes
        new_index, out_nodes = {}, []
        self.feed_vars = {}  # variable name -> bottom version
        for k, (entry, version) in enumerate(sorted(feeds.items())):
            name = f"__feed{k}__"
            while name in pieces._names:
                name = "_" + name
            new_index[entry] = len(out_nodes)
            out_nodes.append({"op": "null", "name": name, "inputs": []})
            self.feed_vars[name] = version
        for nid in keep:
            n = nodes[nid]
            ins = []
            for src, idx, ver in n["inputs"]:
                e = (src, idx)
                ins.append([new_index[e], 0, 0] if e in feeds else [new_index[src], idx, ver])
            new_index[nid] = len(out_nodes)
            out_nodes.append(dict(n, inputs=ins))
        self.head_feed = {}
        head_entries = []
        for i, (e, fed) in enumerate(heads):
            if fed:
                self.head_feed[i] = feeds[e]
            else:
                head_entries.append([new_index[e[0]], e[1], 0])
        self.n_heads = len(heads)
        self.needed = sorted(set(self.feed_vars.values()) | set(self.head_feed.values()))
        self.op, self.inputs = None, []
        if head_entries:
            arg_nodes = [i for i, n in enumerate(out_nodes) if n["op"] == "null"]
            js = {"nodes": out_nodes, "arg_nodes": arg_nodes, "heads": head_entries, "attrs": pieces.attrs}
            sym = mx.sym.load_json(json.dumps(js))
            # CachedOp, not bind: no executor, no subgraph backend (it would fuse ops and log at every bind)
            self.op = mx.nd.CachedOp(sym)
            params = dict(pieces.args, **pieces.auxs)
            self.inputs = [name if name in self.feed_vars else params[name] for name in sym.list_inputs()]

    def __call__(self, values):
        """Outputs (np.float32 arrays, one per top) for bottoms {version: array}."""
        outs = []
        if self.op is not None:
            mx = self.mx
            held = {}  # the float32 copies MXNet reads without copying, alive until the call returns
            for x in self.inputs:
                if isinstance(x, str) and x not in held:
                    held[x] = np.ascontiguousarray(values[self.feed_vars[x]], np.float32)
            args = [mx.nd.from_numpy(held[x], zero_copy=True) if isinstance(x, str) else x for x in self.inputs]
            res = self.op(*args)
            res = res if isinstance(res, (list, tuple)) else [res]
            outs = [o.asnumpy() for o in res]
        result, it = [], iter(outs)
        for i in range(self.n_heads):
            if i in self.head_feed:
                result.append(np.asarray(values[self.head_feed[i]], np.float32))
            else:
                result.append(next(it))
        return result


def op_nodes(pieces, layers):
    """The MXNet operators the Caffe `layers` own, each as (op, attrs, [parameter value or None per input])."""
    owned = set(layers)
    out = []
    for n in pieces.nodes:
        if n["op"] == "null" or pieces.owner.get(n["name"]) not in owned:
            continue
        values = []
        for src, _, _ in n["inputs"]:
            name = pieces.nodes[src]["name"]
            value = pieces.args.get(name, pieces.auxs.get(name)) if pieces.nodes[src]["op"] == "null" else None
            values.append(None if value is None else value.asnumpy().astype(np.float64))
        out.append((n["op"], dict(n.get("attrs", {})), values))
    return out
