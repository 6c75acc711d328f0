"""Sweep cases: Scale and Bias."""
import itertools

from . import DATA4, case, layer, make_net  # noqa: F401

# Scale / Bias: axis x num_axes, blob or second bottom
DATA4 = ("data", (2, 3, 4, 5))
for type_, axis, num_axes, second in itertools.product(("Scale", "Bias"), (0, 1, 2), (0, -1, 1, 2), (False, True)):
    shape = DATA4[1]
    end = len(shape) if num_axes == -1 else axis + num_axes
    pshape = shape[axis:end]
    if second and num_axes == 0:
        continue
    pname = "scale_param" if type_ == "Scale" else "bias_param"
    extra = " bias_term: true" if type_ == "Scale" and not second and axis == 1 else ""
    param = f"{pname} {{ axis: {axis} num_axes: {num_axes}{extra} }}"
    ins = (DATA4, ("p", pshape)) if second else (DATA4,)
    bots = ("data", "p") if second else ("data",)
    case(f"{type_}-axis{axis}-num_axes{num_axes}-{'bottom' if second else 'blob'}",
         make_net(layer("s", type_, bottoms=bots, param=param), ins))
case("Scale-axis-neg1-blob", make_net(layer("s", "Scale", param="scale_param { axis: -1 }"), (DATA4,)))
