"""Write the Residual Attention Network deploy prototxts kept in this folder.

Run ``python prototxts/generate.py`` to (re)write them, or ``--check`` to exit 1
when a committed file differs from what this script produces.

The nets are built from a spec, (p, t, r) and m = (m1, m2, m3), the way the
original Caffe release lays them out (Attention-56 and AttentionNeXt-56 come out
layer for layer equal to fwang91's deploy files). Two unit styles exist:

* ``attention*``: pre-activation bottleneck (width C/4). A sum ``X`` is followed,
  where a later unit needs it, by ``X/bn`` + ReLU; the identity path reads raw ``X``.
* ``attentionnext*``: post-activation ResNeXt unit (width C/2, 3x3 in 32 groups),
  every conv followed by BN, ReLU in place on the sum, all convs carrying
  ``param{ lr_mult: 1 decay_mult: 1 }``; the mask names its paths ``down``/``up``
  and its product ``<name>/attention_residual``.

Naming beyond the published p=1, t=2, r=1 files, chosen to extend their pattern:

* Trunk: ``<name>/trunk/res1..res{p}`` are the p pre-processing units and
  ``res{p+1}..res{p+t}`` the t trunk units; the mask starts from raw ``trunk/res{p}``.
* Mask level k holds ``res{k}_1..res{k}_r`` (the innermost level ``res{k}_1..res{k}_2r``,
  the up path ``up_sample/res{k}_1..r``). The skip unit ``mask/skip/res{k}`` and the
  size reference of ``interp_{k+1}`` are the level's last down unit ``res{k}_r``,
  which is ``res{k}_1`` in the originals.
* Post-processing: the last of the p units keeps the original name (``<name>/branch1/*``,
  output ``<name>``); earlier ones are ``<name>/post/res1..res{p-1}``.

The original AttentionNeXt-92 deploy file feeds its classifier from a blob named
``ave_pool_gather`` that no layer produces; ``attentionnext92`` here feeds it from
``ave_pool`` like every other net, so the file is a valid net.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (family, depth, (p, t, r), (m1, m2, m3))
SPECS = {
    "attention56": ("attention", 56, (1, 2, 1), (1, 1, 1)),
    "attention92": ("attention", 92, (1, 2, 1), (1, 2, 3)),
    "attention128": ("attention", 128, (1, 2, 1), (3, 3, 3)),
    "attention164": ("attention", 164, (1, 2, 1), (4, 4, 4)),
    "attention236": ("attention", 236, (1, 2, 1), (6, 6, 6)),
    "attention452": ("attention", 452, (2, 4, 3), (6, 6, 6)),
    "attentionnext56": ("attentionnext", 56, (1, 2, 1), (1, 1, 1)),
    "attentionnext92": ("attentionnext", 92, (1, 2, 1), (1, 2, 3)),
}

# stage letter, channels, max-pools in the mask branch
STAGES = (("A", 256, 3), ("B", 512, 2), ("C", 1024, 1))
NUM_CLASSES = 1000
INPUT_DIMS = (1, 3, 224, 224)


class Enum(str):
    """A protobuf enum value, written without quotes."""


class Net:
    """An ordered list of layers plus the unit style that decides BN/ReLU placement."""

    def __init__(self, next_style):
        self.next_style = next_style
        self.layers = []

    def add(self, name, type_, bottoms, top=None, fields=()):
        self.layers.append((name, type_, list(bottoms), [top or name], list(fields)))
        return top or name

    def conv(self, name, bottom, num_output, kernel, stride=1, group=1):
        conv_fields = [("num_output", num_output), ("pad", (kernel - 1) // 2), ("kernel_size", kernel),
                       ("stride", stride)]
        if group > 1:
            conv_fields.append(("group", group))
        conv_fields.append(("bias_term", False))
        fields = [("param", [("lr_mult", 1), ("decay_mult", 1)])] if self.next_style else []
        fields.append(("convolution_param", conv_fields))
        return self.add(name, "Convolution", [bottom], fields=fields)

    def bn(self, bottom):
        return self.add(bottom + "/bn", "BN", [bottom], fields=[("bn_param", [("frozen", True)])])

    def relu(self, blob, name=None):
        self.add(name or blob + "/relu", "ReLU", [blob], top=blob)
        return blob

    def bn_relu(self, bottom):
        top = self.bn(bottom)
        return self.relu(top, name=top + "/relu")

    def pre_act(self, blob):
        """The blob a pre-activation unit reads; NeXt blobs are already activated in place."""
        return blob if self.next_style else self.bn_relu(blob)

    def max_pool(self, name, bottom):
        fields = [("pooling_param", [("pool", Enum("MAX")), ("kernel_size", 3), ("stride", 2)])]
        return self.add(name, "Pooling", [bottom], fields=fields)

    def eltwise(self, name, bottoms, op):
        return self.add(name, "Eltwise", bottoms, fields=[("eltwise_param", [("operation", Enum(op))])])

    def interp(self, name, bottom, size_of):
        return self.add(name, "Interp", [bottom, size_of])


def residual_unit(net, name, x, x_act, out, stride=1, project=False):
    """One bottleneck unit named ``name``: convs under ``name/branch1``, projection ``name/branch2``.

    ``x`` is the raw input (identity path), ``x_act`` the blob the convs read.
    Returns the raw sum ``name``.
    """
    b1 = name + "/branch1"
    if net.next_style:
        width, group = out // 2, 32
    else:
        width, group = out // 4, 1
    h = net.bn_relu(net.conv(b1 + "/conv1_1x1", x_act, width, 1))
    h = net.bn_relu(net.conv(b1 + "/conv2_3x3", h, width, 3, stride, group))
    h = net.conv(b1 + "/conv3_1x1", h, out, 1)
    if net.next_style:
        h = net.bn(h)
    if project:
        s = net.conv(name + "/branch2/conv1_1x1", x_act, out, 1, stride)
        if net.next_style:
            s = net.bn(s)
        net.eltwise(name, [s, h], "SUM")
    else:
        net.eltwise(name, [h, x], "SUM")
    if net.next_style:
        net.relu(name)
    return name


def unit_chain(net, names, x, x_act, out, activate_last):
    """Identity units in sequence; the last output is pre-activated only if asked."""
    for i, name in enumerate(names):
        x = residual_unit(net, name, x, x_act, out)
        if i + 1 < len(names) or activate_last:
            x_act = net.pre_act(x)
    return x, x_act


def mask_branch(net, mod, trunk_in, trunk_out, channels, pools, r):
    """Soft mask: ``pools`` max-pool levels down, skips and bilinear Interp back up, then sigmoid."""
    down_path, up_path = ("down", "up") if net.next_style else ("down_sample", "up_sample")
    down, up = "%s/mask/%s" % (mod, down_path), "%s/mask/%s" % (mod, up_path)
    level_out = {}
    x = trunk_in
    for k in range(1, pools + 1):
        pool = net.max_pool("%s/pool%d_3x3_s2" % (down, k), x)
        units = 2 * r if k == pools else r
        names = ["%s/res%d_%d" % (down, k, j) for j in range(1, units + 1)]
        x, _ = unit_chain(net, names, pool, net.pre_act(pool), channels, activate_last=False)
        level_out[k] = x
    for k in range(pools - 1, 0, -1):
        interp = net.interp("%s/interp_%d" % (up, k + 1), x, level_out[k])
        skip_in = level_out[k]
        skip = residual_unit(net, "%s/mask/skip/res%d" % (mod, k), skip_in, net.pre_act(skip_in), channels)
        merged = net.eltwise("%s/mask/%s%d" % (mod, up_path, k), [skip, interp], "SUM")
        names = ["%s/res%d_%d" % (up, k, j) for j in range(1, r + 1)]
        x, _ = unit_chain(net, names, merged, net.pre_act(merged), channels, activate_last=False)
    h = net.pre_act(net.interp("%s/interp_1" % up, x, trunk_out))
    h = net.bn_relu(net.conv("%s/mask/linear_1" % mod, h, channels, 1))
    h = net.conv("%s/mask/linear_2" % mod, h, channels, 1)
    return net.add("%s/mask" % mod, "Sigmoid", [h])


def attention_module(net, mod, x, x_act, channels, pools, p, t, r):
    """Trunk of p+t units, mask from the p-th, output (1+M)*T, then p post units; returns (raw, act)."""
    trunk = ["%s/trunk/res%d" % (mod, j) for j in range(1, p + t + 1)]
    x, x_act = unit_chain(net, trunk[:p], x, x_act, channels, activate_last=True)
    trunk_in = x
    trunk_out, _ = unit_chain(net, trunk[p:], x, x_act, channels, activate_last=False)
    mask = mask_branch(net, mod, trunk_in, trunk_out, channels, pools, r)
    product = mod + ("/attention_residual" if net.next_style else "_residual")
    net.eltwise(product, [trunk_out, mask], "PROD")
    fusion = net.eltwise(mod + "/fusion", [product, trunk_out], "SUM")
    post = ["%s/post/res%d" % (mod, j) for j in range(1, p)] + [mod]
    return unit_chain(net, post, fusion, net.pre_act(fusion), channels, activate_last=True)


def build_net(family, p, t, r, m):
    """The whole deploy net as a Net."""
    net = Net(next_style=(family == "attentionnext"))
    x = net.conv("conv1", "data", 64, 7, 2)
    x = net.bn_relu(x)
    x = net.max_pool("pool1_3x3_s2", x)
    x_act = net.pre_act(x)
    for s, ((letter, channels, pools), count) in enumerate(zip(STAGES, m), start=1):
        x = residual_unit(net, "pre_res_%d" % s, x, x_act, channels, stride=1 if s == 1 else 2, project=True)
        x_act = net.pre_act(x)
        for i in range(1, count + 1):
            x, x_act = attention_module(net, "Attention%s_%d" % (letter, i), x, x_act, channels, pools, p, t, r)
    x = residual_unit(net, "post_res_4_1", x, x_act, 2048, stride=2, project=True)
    x_act = net.pre_act(x)
    x, x_act = unit_chain(net, ["post_res_4_2", "post_res_4_3"], x, x_act, 2048, activate_last=True)
    pool_fields = [("pooling_param", [("pool", Enum("AVE")), ("kernel_size", 7), ("stride", 1)])]
    x = net.add("ave_pool", "Pooling", [x_act], fields=pool_fields)
    # Every net, attentionnext92 included, feeds the classifier from ave_pool; the original
    # AttentionNeXt-92 file reads "ave_pool_gather", which no layer writes.
    x = net.add("classifier", "InnerProduct", [x], fields=[("inner_product_param", [("num_output", NUM_CLASSES)])])
    net.add("cls", "Softmax", [x])
    return net


def _value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Enum):
        return str(v)
    if isinstance(v, str):
        return '"%s"' % v
    return str(v)


def _fields(fields, depth):
    tabs = "\t" * depth
    lines = []
    for key, value in fields:
        if isinstance(value, list):
            lines.append("%s%s%s{" % (tabs, key, "" if key == "param" else " "))
            lines += _fields(value, depth + 1)
            lines.append(tabs + "}")
        else:
            lines.append("%s%s: %s" % (tabs, key, _value(value)))
    return lines


def net_title(family, depth):
    return ("AttentionNext-%d" if family == "attentionnext" else "Attention-%d") % depth


def render(name):
    """Prototxt text of the named net."""
    family, depth, (p, t, r), m = SPECS[name]
    net = build_net(family, p, t, r, m)
    out = ['name: "%s"' % net_title(family, depth), 'input: "data"']
    out += ["input_dim: %d" % d for d in INPUT_DIMS]
    out.append("")
    for lname, ltype, bottoms, tops, fields in net.layers:
        head = [("name", lname), ("type", ltype)] + [("bottom", b) for b in bottoms] + [("top", t) for t in tops]
        out.append("layer{")
        out += _fields(head + fields, 1)
        out.append("}")
        out.append("")
    return "\n".join(out) + "\n"


def path_of(name):
    return os.path.join(HERE, name + ".prototxt")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a committed file is stale; write nothing")
    args = ap.parse_args(argv)
    stale = []
    for name in SPECS:
        text = render(name)
        path = path_of(name)
        try:
            with open(path, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current == text:
            continue
        if args.check:
            stale.append(os.path.relpath(path))
        else:
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            print("wrote", os.path.relpath(path))
    if stale:
        print("out of date (run python prototxts/generate.py):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
