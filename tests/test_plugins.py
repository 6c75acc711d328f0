"""Your own layer types without editing caffe2mx: --plugin files, installed entry points, and
--proto for a fork's parameter messages (examples/plugins: the fork layer HSwish).

Numbers: verify compares the converted MXNet model with the plug-in's own NumPy reference
(written from the layer's formula, not from its emission) and with ONNX Runtime on the
exported file; the parameters the handler read are checked against the prototxt's text.
"""
import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from caffe2mx.cli import main
from caffe2mx.converter import plugins
from caffe2mx.converter import proto as schema
from caffe2mx.converter.errors import Caffe2MXError, ModelErrors, UsageError
from caffe2mx.converter.layers import base as layer_registry
from caffe2mx.converter.onnx_export import registry as onnx_registry
from caffe2mx.converter.proto import user_schema
from caffe2mx.verify.numpy_ref import registry as ref_registry

from conftest import REPO

EXAMPLE = REPO / "examples" / "plugins"
PLUGIN, PROTO, NET = EXAMPLE / "hswish.py", EXAMPLE / "hswish.proto", EXAMPLE / "hswish_net.prototxt"
EXT = ["--plugin", str(PLUGIN), "--proto", str(PROTO)]


@pytest.fixture(autouse=True)
def isolated():
    """Each test starts from caffe2mx's own registries and schema and leaves them so: other test
    files check that every registered type has sweep cases, which a plug-in's type has not."""
    regs = (layer_registry._HANDLERS, ref_registry._HANDLERS, onnx_registry._TRANSLATORS, plugins._LOADED,
            plugins._PROTOS)
    onnx_registry._load_translators()
    saved = [r.copy() for r in regs]
    yield
    for reg, before in zip(regs, saved):
        reg.clear()
        if isinstance(reg, dict):
            reg.update(before)
        else:
            reg.extend(before)
    schema.reset()


def _run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


# -- the worked example, through the CLI ------------------------------------------------------
def test_fork_layer_converts_verifies_and_exports_through_the_cli(tmp_path, capsys):
    prefix = tmp_path / "hs"
    rc, _, err = _run(capsys, "convert", NET, "-o", prefix, *EXT)
    assert rc == 0, err
    rc, out, err = _run(capsys, "verify", "--model", prefix, *EXT)
    assert rc == 0 and "PASS" in out, out + err
    rc, _, err = _run(capsys, "export-onnx", "--model", prefix, "-o", tmp_path / "hs.onnx", *EXT)
    assert rc == 0, err
    rc, out, err = _run(capsys, "verify", "--model", prefix, "--reference", "onnxruntime", "--onnx",
                        tmp_path / "hs.onnx", *EXT)
    assert rc == 0 and "PASS" in out, out + err
    # the handler read hswish_param from the prototxt: act1 sets alpha 0.2, act2 keeps the .proto's default
    nodes = {n["name"]: n for n in json.loads((tmp_path / "hs-symbol.json").read_text())["nodes"]}
    nm = json.loads((tmp_path / "hs-namemap.json").read_text())
    scalars = {layer: [float(nodes[n]["attrs"]["scalar"]) for n in nm["layers"][layer]["nodes"]
                       if nodes[n]["op"] == "_mul_scalar"] for layer in ("act1", "act2")}
    assert scalars["act1"] == [pytest.approx(0.2)]
    assert scalars["act2"] == [pytest.approx(1 / 6, rel=1e-6)]
    assert nm["extensions"] == {"plugins": [str(PLUGIN)], "protos": [str(PROTO)]}


def test_without_the_proto_the_fork_field_is_one_located_error(tmp_path, capsys):
    rc, _, err = _run(capsys, "convert", NET, "-o", tmp_path / "x", "--plugin", PLUGIN)
    assert rc == 2
    assert f"{NET}:16: layer 'act1' (HSwish): unknown field hswish_param" in err and "--proto" in err
    assert "Traceback" not in err and not list(tmp_path.iterdir())


def test_without_the_plugin_the_type_is_listed_as_unsupported(tmp_path, capsys):
    rc, _, err = _run(capsys, "convert", NET, "-o", tmp_path / "x", "--proto", PROTO)
    assert rc == 2
    assert f"{NET}:11: layer 'act1' (HSwish): unsupported layer type" in err
    assert f"{NET}:25: layer 'act2' (HSwish): unsupported layer type" in err


def test_every_command_that_reads_a_net_takes_plugin_and_proto():
    from caffe2mx.cli import build_parser
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    takes = {name for name, p in sub.choices.items() if "--plugin" in p._option_string_actions
             and "--proto" in p._option_string_actions}
    assert {"convert", "verify", "export-onnx", "inspect", "init-weights", "visualize"} <= takes


# -- the API ------------------------------------------------------------------------------------
def test_api_load_plugin_and_proto(tmp_path):
    import numpy as np
    import caffe2mx
    caffe2mx.load_proto(PROTO)
    plugin = caffe2mx.load_plugin(PLUGIN)
    assert plugin.types == ("HSwish",)
    assert caffe2mx.load_plugin(PLUGIN) is plugin, "loading a file again is a no-op"
    conv = caffe2mx.convert(NET)
    x = np.random.default_rng(0).uniform(-4, 4, (1, 3, 16, 16)).astype(np.float32)
    from caffe2mx.verify.numpy_ref import forward
    ref = forward(conv.net.graph, {"data": x}, weights={n.name: n.blobs for n in conv.net.graph.nodes if n.blobs})
    import mxnet as mx
    got = conv.to_gluon()(mx.nd.array(x)).asnumpy()
    want = ref.blobs["act2"]
    assert got.shape == want.shape == (1, 4, 14, 14)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


# -- registry rules ------------------------------------------------------------------------------
def _plugin(tmp_path, name, body):
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return p


HEADER = """
    from caffe2mx.converter.layers import LayerHandler, register
    from caffe2mx.verify.numpy_ref import register as reference
"""


def test_a_built_in_type_registered_again_names_both_and_nothing_stays(tmp_path):
    p = _plugin(tmp_path, "relu_again.py", HEADER + """
    @register
    class MyTwin(LayerHandler):
        types = ("MyTwin",)
        mx_ops = ("Activation",)

    @register
    class MyReLU(LayerHandler):
        types = ("ReLU",)
        mx_ops = ("Activation",)
    """)
    with pytest.raises(UsageError) as exc:
        plugins.load_plugin(p)
    msg = str(exc.value)
    assert "'ReLU' is registered twice" in msg and "caffe2mx.converter.layers.activations.ReLU" in msg
    decorator = p.read_text().splitlines().index("@register", 6) + 1  # the second @register
    assert f"plug-in {p}:{decorator}" in msg and "MyReLU" in msg, msg
    assert layer_registry.handler_for("MyTwin") is None, "a failed plug-in leaves nothing registered"
    assert type(layer_registry.handler_for("ReLU")).__module__ == "caffe2mx.converter.layers.activations"


def test_two_plugin_files_registering_one_type_name_both_files(tmp_path):
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    shutil.copy(PLUGIN, first)
    shutil.copy(PLUGIN, second)
    plugins.load_plugin(first)
    with pytest.raises(UsageError) as exc:
        plugins.load_plugin(second)
    msg = str(exc.value)
    assert "'HSwish' is registered twice" in msg and str(first) in msg and str(second) in msg


def test_a_type_without_numpy_reference_is_refused(tmp_path):
    p = _plugin(tmp_path, "half.py", HEADER + """
    @register
    class Half(LayerHandler):
        types = ("Half",)
        mx_ops = ("_mul_scalar",)
    """)
    with pytest.raises(UsageError, match="registers no NumPy reference for Half"):
        plugins.load_plugin(p)
    assert layer_registry.handler_for("Half") is None


def test_rules_internal_types_and_ops_without_translator(tmp_path):
    p = _plugin(tmp_path, "bad.py", HEADER + """
    @register
    class Hidden(LayerHandler):
        types = ("_Hidden",)
        mx_ops = ("Activation",)

    @register
    class Odd(LayerHandler):
        types = ("Odd",)
        mx_ops = ("erfinv",)

    reference("_Hidden", "Odd")(lambda call: [call.bottoms[0]])
    """)
    with pytest.raises(UsageError) as exc:
        plugins.load_plugin(p)
    assert "internal type(s) _Hidden" in str(exc.value)
    assert "erfinv that have no ONNX translator" in str(exc.value)


def test_a_plugin_may_bring_the_onnx_translator_of_a_new_op(tmp_path, capsys):
    p = _plugin(tmp_path, "neg.py", HEADER + """
    from caffe2mx.converter.onnx_export.registry import translates

    @register
    class Negate(LayerHandler):
        types = ("Negate",)
        mx_ops = ("negative",)

        def emit(self, node, inputs, em):
            return [em.mx.negative(inputs[0], name=em.name(node))]

    @reference("Negate")
    def negate(call):
        return [-call.bottoms[0]]

    @translates("negative")
    def negative(b, node):
        b.add("Neg", [node.inputs[0]], node.output)
    """)
    net = tmp_path / "neg.prototxt"
    net.write_text('input: "x" input_shape { dim: 2 dim: 3 dim: 4 dim: 5 }\n'
                   'layer { name: "n" type: "Negate" bottom: "x" top: "y" }\n')
    rc, out, err = _run(capsys, "verify", net, "--reference", "onnxruntime", "--plugin", p)
    assert rc == 0 and "PASS" in out, out + err


def test_a_plugin_that_raises_while_loading_names_its_line(tmp_path, capsys):
    p = _plugin(tmp_path, "broken.py", """
    x = 1
    raise RuntimeError("not today")
    """)
    rc, _, err = _run(capsys, "inspect", NET, "--plugin", p)
    assert rc == 2 and f"plug-in {p}:3: RuntimeError: not today" in err


def test_a_plugin_handler_failing_at_run_time_is_blamed_not_caffe2mx(tmp_path, capsys):
    p = _plugin(tmp_path, "faulty.py", HEADER + """
    @register
    class Faulty(LayerHandler):
        types = ("Faulty",)
        mx_ops = ("Activation",)

        def output_shapes(self, node, in_shapes):
            return [in_shapes[0]]

        def emit(self, node, inputs, em):
            return [1 / 0]

    reference("Faulty")(lambda call: [call.bottoms[0]])
    """)
    net = tmp_path / "f.prototxt"
    net.write_text('input: "x" input_shape { dim: 1 dim: 1 dim: 2 dim: 2 }\n'
                   'layer { name: "f" type: "Faulty" bottom: "x" top: "y" }\n')
    rc, _, err = _run(capsys, "convert", net, "-o", tmp_path / "out", "--plugin", p)
    line = p.read_text().splitlines().index("        return [1 / 0]") + 1
    assert rc == 2 and f"plug-in {p}:{line}: ZeroDivisionError" in err, err


def test_bad_plugin_and_proto_paths_are_usage_errors(tmp_path, capsys):
    rc, _, err = _run(capsys, "inspect", NET, "--plugin", tmp_path / "none.py")
    assert rc == 2 and "no such file" in err
    rc, _, err = _run(capsys, "inspect", NET, "--plugin", PROTO)
    assert rc == 2 and "a plug-in is a Python file" in err
    rc, _, err = _run(capsys, "inspect", NET, "--proto", tmp_path / "none.proto")
    assert rc == 2 and "no such file" in err


def test_a_model_file_never_makes_caffe2mx_import_code(tmp_path, monkeypatch):
    """A Python layer names a module that would leave a mark if imported; it never is."""
    from caffe2mx.converter.pipeline import read_net
    (tmp_path / "evil_layer.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    net = tmp_path / "py.prototxt"
    net.write_text('input: "x" input_shape { dim: 1 dim: 1 dim: 2 dim: 2 }\n'
                   'layer { name: "p" type: "Python" bottom: "x" top: "y"\n'
                   '        python_param { module: "evil_layer" layer: "Evil" } }\n')
    with pytest.raises(Caffe2MXError, match="Python layers are never imported"):
        read_net(net)
    assert not (tmp_path / "imported").exists()


def test_installed_package_entry_point_is_loaded(tmp_path):
    """A package exposing `caffe2mx.layers` is found through importlib.metadata: a fake installed
    distribution on PYTHONPATH whose module also extends the schema with its own .proto."""
    site = tmp_path / "site"
    dist = site / "hswish_pkg-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hswish-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[caffe2mx.layers]\nhswish = hswish_pkg\n")
    (site / "hswish_pkg.py").write_text(
        f"from caffe2mx.converter.plugins import load_proto\nload_proto({str(PROTO)!r})\n" + PLUGIN.read_text())
    env = dict(__import__("os").environ, PYTHONPATH=str(site))
    r = subprocess.run([sys.executable, "-m", "caffe2mx", "inspect", str(NET)], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "act2" in r.stdout and "HSwish" in r.stdout


# -- --proto: the schema extended at run time ------------------------------------------------------
def test_proto_text_reader_matches_protoc_on_caffe_proto():
    """caffe.desc was written by protoc from caffe.proto: reading the same text here must give the
    same fields (numbers, types, labels, message/enum types, defaults) and enum values."""
    from google.protobuf import descriptor_pb2, descriptor_pool
    mine = user_schema.file_proto_from_text((REPO / "converter" / "proto" / "caffe.proto").read_text(), "caffe.proto")
    empty = descriptor_pb2.FileDescriptorProto(name="caffe.proto", package="caffe", syntax="proto2")
    merged, notes = user_schema.merge(empty, mine)
    assert notes == []

    def table(fdp):
        pool = descriptor_pool.DescriptorPool()
        pool.Add(fdp)
        out = {}

        def walk(m):
            for f in m.fields:
                out[f.full_name] = (f.number, f.type, f.is_repeated if hasattr(f, "is_repeated") else f.label,
                                    f.message_type and f.message_type.full_name,
                                    f.enum_type and f.enum_type.full_name,
                                    repr(f.default_value) if f.has_default_value else None)
            for n in m.nested_types:
                walk(n)
            for e in m.enum_types:
                out[e.full_name] = [(v.name, v.number) for v in e.values]

        fd = pool.FindFileByName("caffe.proto")
        for m in fd.message_types_by_name.values():
            walk(m)
        for e in fd.enum_types_by_name.values():
            out[e.full_name] = [(v.name, v.number) for v in e.values]
        return out

    ours, protoc = table(merged), table(schema.base_file_proto())
    assert len(protoc) > 600
    assert ours == protoc


def test_descriptor_set_from_protoc_is_accepted(tmp_path, capsys):
    protoc = pytest.importorskip("grpc_tools.protoc")
    desc = tmp_path / "hswish.desc"
    assert protoc.main(["protoc", f"-I{EXAMPLE}", f"--descriptor_set_out={desc}", str(PROTO)]) == 0
    rc, out, err = _run(capsys, "verify", NET, "--proto", desc, "--plugin", PLUGIN)
    assert rc == 0 and "PASS" in out, err


def _extend(tmp_path, text):
    p = tmp_path / "fork.proto"
    p.write_text(textwrap.dedent(text))
    return plugins.load_proto(p)


def _parse_layer(text):
    from caffe2mx.converter.prototxt import parse_prototxt_text
    return parse_prototxt_text(text)


def test_extend_block_and_whole_fork_file_forms(tmp_path):
    notes = _extend(tmp_path, """
    syntax = "proto2";
    package caffe;
    import "caffe.proto";
    message FooParameter { optional int32 k = 1 [default = 3]; enum Mode { A = 0; B = 1; } optional Mode mode = 2; }
    extend LayerParameter { optional FooParameter foo_param = 147; }
    // a fork's redefinition of a BVLC message: what exists is kept, the new field is added
    message ReLUParameter { optional float negative_slope = 1 [default = 0]; optional bool fancy = 99; }
    """)
    # 147 is the RAN fork's interp_param, 1147 and 1148 hold BVLC's swish/clip params: the first free is 1149
    assert len(notes) == 1 and "LayerParameter.foo_param = 147 is caffe.LayerParameter.interp_param" in notes[0]
    assert "moved to 1149" in notes[0]
    parsed = _parse_layer('layer { name: "f" type: "Foo" foo_param { k: 5 mode: B } relu_param { fancy: true } }')
    layer = parsed.net.layer[0]
    assert parsed.unknown_fields == ()
    assert (layer.foo_param.k, layer.foo_param.mode, layer.relu_param.fancy) == (5, 1, True)
    assert layer.DESCRIPTOR.fields_by_name["foo_param"].number == 1149
    assert schema.caffe_pb.LayerParameter().foo_param.k == 3, "the .proto's default"


def test_a_field_whose_type_disagrees_with_the_schema_names_both(tmp_path):
    with pytest.raises(UsageError, match=r"ConvolutionParameter.num_output is optional string there but "
                                         r"optional uint32 in caffe2mx's schema"):
        _extend(tmp_path, """
        message ConvolutionParameter { optional string num_output = 1; }
        """)


def test_proto_syntax_error_and_unknown_type_are_located(tmp_path):
    with pytest.raises(UsageError, match=r"fork.proto:4:1: mismatched input"):
        _extend(tmp_path, """
        message A {
          optional int32 x = 1
        }
        """)
    with pytest.raises(UsageError, match=r"field caffe.LayerParameter.x_param: unknown type 'XParam'"):
        _extend(tmp_path, """
        message LayerParameter { optional XParam x_param = 5000; }
        """)


def test_v1_nets_still_upgrade_after_the_schema_is_extended(tmp_path):
    """V1 `layers {}` blocks are upgraded with the schema's current classes."""
    from caffe2mx.converter.pipeline import read_net
    plugins.load_proto(PROTO)
    net = tmp_path / "v1.prototxt"
    net.write_text('input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\n'
                   'layers { name: "c" type: CONVOLUTION bottom: "data" top: "c"\n'
                   '         convolution_param { num_output: 2 kernel_size: 3 } }\n'
                   'layers { name: "r" type: RELU bottom: "c" top: "c" }\n')
    assert read_net(net).shapes
