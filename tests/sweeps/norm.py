"""Sweep cases: The fork's BN, BVLC BatchNorm (alone, + fused Scale, + unfused Scale), LRN."""
import itertools

from . import DATA4, case, layer, make_net  # noqa: F401

# The fork's BN (in place, as the fork writes it), both blob-3 conventions
for mode, eps, inplace in itertools.product(("inv_std", "variance"), (None, 1e-3), (True, False)):
    top = ("data",) if inplace else ("bn",)
    ep = f"eps: {eps}" if eps else ""
    case(f"BN-{mode}-eps{eps or 'default'}-{'inplace' if inplace else 'out'}",
         make_net(layer("bn", "BN", tops=top, param=f"bn_param {{ frozen: true {ep} }}")), bn_blob3=mode)
case("BN-inv_std-upto1000-exact-fold",
     make_net(layer("bn", "BN", tops=("data",), param="bn_param { frozen: true }")),
     opts={"inv_std": (0.1, 1000.0), "in_scale": 1e-3})

# BVLC BatchNorm: global stats (unset/true/false) x factor x eps, alone, + in-place Scale (fused),
# + not-in-place Scale (unfused)
for n, (ugs, factor, follow) in enumerate(itertools.product(("unset", "true", "false"), (0.0, 0.5, 1.0),
                                                            ("alone", "fused", "fused-nobias", "unfused"))):
    eps = "" if n % 2 else "eps: 0.001"
    g = "" if ugs == "unset" else f"use_global_stats: {ugs}"
    bn_top = ("bn",) if follow == "unfused" else ("data",)
    text = layer("bn", "BatchNorm", tops=bn_top, param=f"batch_norm_param {{ {g} {eps} }}")
    if follow != "alone":
        text += layer("sc", "Scale", bottoms=bn_top, tops=("sc",) if follow == "unfused" else bn_top,
                      param=f"scale_param {{ bias_term: {'false' if follow == 'fused-nobias' else 'true'} }}")
    case(f"BatchNorm-gs_{ugs}-f{factor}-{'eps1e-3' if eps else 'epsdef'}-{follow}", make_net(text),
         opts={"factor": factor})


for region, size, k in itertools.product(("ACROSS_CHANNELS", "WITHIN_CHANNEL"), (3, 5), (1.0, 2.0)):
    case(f"LRN-{region}-n{size}-k{k}",
         make_net(layer("lrn", "LRN", param=f"lrn_param {{ norm_region: {region} local_size: {size} "
                        f"alpha: 0.3 beta: 0.75 k: {k} }}"), (("data", (2, 7, 6, 5)),)))

# MVN: each combination of normalize_variance and across_channels, eps, 2-D and 3-D bottoms, a shifted input
for nv, ac in itertools.product(("true", "false"), ("true", "false")):
    case(f"MVN-var{nv}-across{ac}", make_net(layer("mvn", "MVN", param=f"mvn_param {{ normalize_variance: {nv} "
                                                                     f"across_channels: {ac} }}"), (DATA4,)),
         opts={"in_shift": 3.0})
case("MVN-eps0.1", make_net(layer("mvn", "MVN", param="mvn_param { eps: 0.1 }")))
case("MVN-inplace", make_net(layer("mvn", "MVN", tops=("data",))))
case("MVN-3d", make_net(layer("mvn", "MVN"), (("data", (2, 3, 7)),)))
case("MVN-2d-across", make_net(layer("mvn", "MVN", param="mvn_param { across_channels: true }"), (("data", (3, 8)),)))
