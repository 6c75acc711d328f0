"""`caffe2mx train` end to end on the built-in digits: accuracy, the record it writes,
resume == uninterrupted, a 2-worker parameter-server job on disjoint shards, fine-tuning a
converted Caffe Attention-56, recipes against the seeds' command lines, and user errors.

Default-run budget: tiny widths and few epochs (see each test); the full `--recipe
digits-demo` runs (>= 95% validation accuracy, single process and 2 workers) are marked
slow (`pytest --slow`)."""
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

from caffe2mx import train
from caffe2mx.mxmodels.training.recipes import RECIPES

REPO = Path(__file__).resolve().parents[1]
TINY = {"widths": [8, 16, 32, 64], "stem_width": 4}
QUICK = dict(model="slim_attention56", data="digits", model_kwargs=TINY, batch_size=32,
             lr_mode="cosine", warmup_epochs=1, lr=0.1, quiet=True)


def _cli(*args, cwd=None, env=None, timeout=600):
    import os
    return subprocess.run([sys.executable, "-m", "caffe2mx", "train", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, env=dict(os.environ, **(env or {})))


def _log(out):
    return [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]


def test_digits_quick_run_learns_and_records(tmp_path):
    """Tiny slim Attention-56 (widths 8..64), 3 epochs on 640 digits: the record, checkpoints
    and plot, and a falling loss (the >= 95% accuracy check is the slow demo test: a tiny
    model needs more than this budget's 18 steps to get far past chance)."""
    rows = train(out=tmp_path, epochs=3, train_samples=192, val_samples=96, **QUICK)
    logged = _log(tmp_path)
    assert rows == logged and [r["epoch"] for r in logged] == [1, 2, 3]
    for r in logged:
        assert {"epoch", "lr", "train_loss", "train_acc", "val_acc", "seconds"} <= set(r)
    assert logged[-1]["train_loss"] < logged[1]["train_loss"] < logged[0]["train_loss"], logged
    assert logged[-1]["train_acc"] > logged[0]["train_acc"] and 0 <= logged[-1]["val_acc"] <= 1
    assert (tmp_path / "learning-curve.png").stat().st_size > 10000
    # the checkpoint is MXNet's own format: the symbol + params reproduce the Gluon model
    sym, args, auxs = mx.model.load_checkpoint(str(tmp_path / "model"), 3)
    from sklearn.datasets import load_digits
    cfg = json.loads((tmp_path / "config.json").read_text())
    x = np.repeat(load_digits().images[:4, None] * (255 / 16), 3, axis=1)
    x = mx.nd.contrib.BilinearResize2D(mx.nd.array(x), height=32, width=32)
    x = (x - mx.nd.array(cfg["mean"]).reshape((1, 3, 1, 1))) / mx.nd.array(cfg["std"]).reshape((1, 3, 1, 1))
    exe = sym.bind(mx.cpu(), {"data": x, **args}, aux_states=auxs, grad_req="null")
    logits = exe.forward(is_train=False)[0].asnumpy()
    ref = mx.gluon.SymbolBlock.imports(str(tmp_path / "model-symbol.json"), ["data"],
                                       str(tmp_path / "model-0003.params"))(x).asnumpy()
    np.testing.assert_allclose(logits, ref, rtol=1e-5, atol=1e-5)
    assert np.isfinite(logits).all() and logits.shape == (4, 10)


def _by_structure(out, epoch):
    """{block path: array} of a checkpoint (the runs name their parameters differently)."""
    names = json.loads((out / "params-map.json").read_text())
    saved = mx.nd.load(str(out / f"model-{epoch:04d}.params"))
    return {names[k.split(":", 1)[1]]: v.asnumpy() for k, v in saved.items()}


def test_resume_equals_uninterrupted(tmp_path):
    """Stop after epoch 2, resume to 3 (through the CLI): the same weights and record as one
    3-epoch run, with mixup and label smoothing on, so the seeded per-epoch randomness and the
    optimizer state must line up too. Run with MXNet's NaiveEngine and one OpenMP thread: the
    threaded engine's op order and threaded reductions are not bitwise reproducible, so even
    two identical uninterrupted runs drift apart by float noise that training amplifies
    (measured on this config: 1e-6 after two epochs, 0.8 after three); with these settings two
    runs, and a resumed one, agree bit for bit (measured)."""
    opts = ["--model", "slim_attention56", "--data", "digits", "--model-kwargs", json.dumps(TINY),
            "--batch-size", "32", "--lr", "0.1", "--lr-mode", "cosine", "--warmup-epochs", "1",
            "--epochs", "3", "--train-samples", "64", "--val-samples", "32", "--mixup",
            "--mixup-alpha", "0.4", "--mixup-off-epoch", "1", "--label-smoothing", "--no-wd", "-q"]
    whole, split = tmp_path / "whole", tmp_path / "split"
    one = {"OMP_NUM_THREADS": "1", "MXNET_ENGINE_TYPE": "NaiveEngine"}
    for extra, out in (([], whole), (["--stop-after", "2"], split), (["--resume"], split)):
        run = _cli(*opts, *extra, "--out", str(out), env=one)
        assert run.returncode == 0, run.stderr[-2000:]
        if extra == ["--stop-after", "2"]:
            assert [r["epoch"] for r in _log(split)] == [1, 2]
    a, b = _by_structure(whole, 3), _by_structure(split, 3)
    assert set(a) == set(b) and len(a) > 100
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=k)
    la, lb = _log(whole), _log(split)
    assert [r["epoch"] for r in lb] == [1, 2, 3]
    assert [r["lr"] for r in la] == pytest.approx([r["lr"] for r in lb], rel=1e-12)
    assert [r["train_loss"] for r in la] == pytest.approx([r["train_loss"] for r in lb], rel=1e-5)


def test_two_workers_one_server_disjoint_shards(tmp_path):
    """--launch local --workers 2 --servers 1 --kvstore dist_sync through the CLI."""
    run = _cli("--model", "slim_attention56", "--data", "digits", "--model-kwargs", json.dumps(TINY),
               "--epochs", "2", "--train-samples", "256", "--val-samples", "64", "--batch-size", "32", "--lr", "0.1", "--lr-mode", "cosine",
               "--warmup-epochs", "1", "--launch", "local", "--workers", "2", "--servers", "1",
               "--kvstore", "dist_sync", "--out", str(tmp_path), "-q")
    assert run.returncode == 0, run.stderr[-3000:]
    shards = [json.loads((tmp_path / f"shard-{r}.json").read_text()) for r in (0, 1)]
    ids = [set(s["ids"]) for s in shards]
    assert not ids[0] & ids[1], "the workers' shards overlap"
    assert len(ids[0] | ids[1]) == 256 and {s["workers"] for s in shards} == {2}
    assert shards[0]["steps_per_epoch"] == shards[1]["steps_per_epoch"] == (256 // 2) // 32
    rows = _log(tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] and 0 <= rows[-1]["val_acc"] <= 1, rows
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["global_batch"] == 64 and cfg["workers"] == 2


@pytest.mark.slow
def test_digits_demo_recipe_reaches_95(tmp_path):
    run = _cli("--recipe", "digits-demo", "--out", str(tmp_path), timeout=3600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert _log(tmp_path)[-1]["val_acc"] >= 0.95


@pytest.mark.slow
def test_digits_demo_two_workers_reaches_95(tmp_path):
    run = _cli("--recipe", "digits-demo", "--launch", "local", "--workers", "2", "--servers", "1",
               "--kvstore", "dist_sync", "--out", str(tmp_path), timeout=3600)
    assert run.returncode == 0, run.stderr[-3000:]
    ids = [set(json.loads((tmp_path / f"shard-{r}.json").read_text())["ids"]) for r in (0, 1)]
    assert not ids[0] & ids[1]
    assert _log(tmp_path)[-1]["val_acc"] >= 0.95


# --- fine-tuning a converted Caffe Attention-56 -------------------------------------------

@pytest.fixture(scope="module")
def seeded_attention56(tmp_path_factory):
    from caffe2mx.seeding import write_init_weights
    proto = REPO / "prototxts" / "attention56.prototxt"
    weights = tmp_path_factory.mktemp("caffe") / "attention56.caffemodel"
    from caffe2mx.converter.pipeline import read_net
    write_init_weights(read_net(str(proto)), str(weights), seed=5)
    return proto, weights


def test_finetune_from_caffe_parity_at_step_0(seeded_attention56):
    """The model `train --from-caffe` builds computes, before any update, the converted Caffe
    net's features (its `pool5` average pool output, by the converter's own symbol)."""
    from caffe2mx import convert
    from caffe2mx.mxmodels.training.network import build
    from caffe2mx.mxmodels.training.options import resolve
    proto, weights = seeded_attention56
    cfg = resolve(dict(model="attention56", data="digits", from_caffe=[str(proto), str(weights)],
                       freeze="stage4", out="unused"))
    net, _, facts = build(cfg, 10, [mx.cpu()])
    assert facts["new_classifier"] == 10
    x = mx.nd.array(np.random.RandomState(0).uniform(-1, 1, (2, 3, 224, 224)).astype("float32"))
    features = net.output[:-1](net.features(x)).asnumpy().reshape(2, -1)
    conv = convert(str(proto), str(weights))
    blob = conv.name_map["blobs"]["ave_pool"]
    sym = conv.symbol.get_internals()[blob]
    exe = sym.bind(mx.cpu(), {"data": x, **{k: v for k, v in conv.arg_params.items() if k in sym.list_arguments()}},
                   aux_states={k: v for k, v in conv.aux_params.items() if k in sym.list_auxiliary_states()},
                   grad_req="null")
    ref = exe.forward(is_train=False)[0].asnumpy().reshape(2, -1)
    scale = np.abs(ref).max()
    assert np.abs(features - ref).max() <= 1e-4 * scale


def test_finetune_from_caffe_improves(seeded_attention56, tmp_path):
    """Attention-56 from seeded Caffe weights, stages frozen up to stage4, new 10-class
    classifier on 32 digits (224x224): the second epoch's loss is below the first's."""
    proto, weights = seeded_attention56
    rows = train(model="attention56", data="digits", out=tmp_path, from_caffe=[str(proto), str(weights)],
                 freeze="stage4", epochs=2, batch_size=16, lr=0.002, lr_mode="constant",
                 train_samples=32, val_samples=16, quiet=True)
    assert rows[1]["train_loss"] < rows[0]["train_loss"], rows
    assert rows[1]["train_acc"] >= rows[0]["train_acc"], rows


# --- recipes against the seeds' own command lines -------------------------------------------

SEED_FLAGS = {   # seed script flag -> (our option, converter)
    "--lr": ("lr", float), "--lr-mode": ("lr_mode", str), "--num-epochs": ("epochs", int),
    "--epochs": ("epochs", int), "--batch-size": ("batch_size", int), "--num-gpus": ("devices", int),
    "--warmup-epochs": ("warmup_epochs", float), "--dtype": ("dtype", str), "--mode": ("mode", str),
    "--wd": ("wd", float), "--lr-decay": ("lr_decay", float),
    "--lr-decay-epoch": ("lr_steps", lambda v: [float(e) for e in v.split(",")]),
    "--alpha": ("mixup_alpha", float), "-j": ("num_workers", int),
}
SEED_SWITCHES = {"--mixup": ("mixup", True), "--last-gamma": ("last_gamma", True),
                 "--no-wd": ("no_wd", True), "--label-smoothing": ("label_smoothing", 0.1)}
# The seeds' commands, quoted from their repositories (docs in mxmodels/training/recipes.py):
SEED_COMMANDS = {
    "imagenet-aff": "--askc-type ASKCFuse --mixup --mode hybrid --lr 0.075 --lr-mode cosine "
                    "--num-epochs 180 --batch-size 128 --num-gpus 2 -j 48 --warmup-epochs 5 "
                    "--dtype float16 --use-rec --last-gamma --no-wd --label-smoothing",
    "imagenet-atac": "--mode hybrid --lr 0.075 --lr-mode cosine --num-epochs 160 --batch-size 128 "
                     "--num-gpus 2 -j 48 --warmup-epochs 5 --dtype float16 --use-rec --last-gamma "
                     "--no-wd --label-smoothing --r 2 --act-layers 2",
    "cifar100-aff": "--model resnet --dataset cifar100 --blocks 5 --channel-times 4 --gpus 0 "
                    "--start-layer 1 --num-epochs 400 --mode hybrid -j 2 --batch-size 128 --wd 0.0001 "
                    "--lr 0.2 --lr-decay 0.1 --lr-decay-epoch 300,350",
    "cifar10-attention": "--num-layers 56 --workers 2 --batch-size 128 --epochs 200 --mix-up 1 "
                         "--alpha 1.0 --lr 1.6 --epsilon 0.0 --float16 0 --warmup-epochs 10",
}


def _printed(recipe):
    lines = []
    assert train(recipe=recipe, dry_run=True, log=lines.append) is None
    text = "\n".join(lines)
    section = text.split("hyper-parameters:")[1]
    values = {}
    for line in section.strip().splitlines():
        flag, _, value = line.strip().partition(" ")
        values[flag] = value
    return text, values


@pytest.mark.parametrize("recipe", sorted(SEED_COMMANDS))
def test_recipe_prints_the_seed_hyper_parameters(recipe):
    from caffe2mx.mxmodels.training.options import flag
    text, printed = _printed(recipe)
    assert RECIPES[recipe].command.endswith(SEED_COMMANDS[recipe]) or SEED_COMMANDS[recipe] in RECIPES[recipe].command
    tokens = shlex.split(SEED_COMMANDS[recipe])
    checked = 0
    for i, tok in enumerate(tokens):
        if tok in SEED_FLAGS and tok not in ("-j",):
            dest, conv = SEED_FLAGS[tok]
            want = conv(tokens[i + 1])
            got = printed.get(flag(dest))
            if dest in ("lr_steps",):
                assert [float(v) for v in got.strip("[]").split(",")] == want
            elif isinstance(want, float):
                assert float(got) == pytest.approx(want), (tok, got)
            else:
                assert got == str(want), (tok, got)
            checked += 1
        elif tok in SEED_SWITCHES:
            dest, want = SEED_SWITCHES[tok]
            assert printed[flag(dest)] == str(want), (tok, printed[flag(dest)])
            checked += 1
    assert checked >= 5
    # what the seed command does NOT switch on stays off
    for tok, (dest, _) in SEED_SWITCHES.items():
        if tok not in tokens and not (recipe in ("cifar10-attention", "cifar100-aff") and dest == "mixup"):
            assert printed[flag(dest)] in ("False", "None"), (recipe, dest)
    assert f"recipe {recipe}:" in text


def test_recipe_cifar10_attention_is_the_tables_best_row():
    """haoxintong's tricks table, best row: 56 layers, global batch 1024, lr 1.6, warmup 10,
    mixup alpha 1.0, no label smoothing -> 0.965044; train.py: nag, wd 1e-4, cosine."""
    _, p = _printed("cifar10-attention")
    assert p["--model"] == "cifar_attention56"
    assert int(p["--batch-size"]) * int(p["--devices"]) == 1024 == int(p["--base-batch"])
    assert (float(p["--lr"]), float(p["--warmup-epochs"]), p["--mixup"], float(p["--mixup-alpha"])) == \
        (1.6, 10.0, "True", 1.0)
    assert p["--label-smoothing"] == "None" and p["--lr-mode"] == "cosine" and p["--optimizer"] == "nag"


def test_recipe_face_arcface_follows_the_report():
    """bruinxiong in insightface #215: c116, emb 256, arcface m=0.5, batch 80 (8 GPUs), lr 0.1,
    lr steps [80000, 160000, 320000, 400000, 560000] (iterations), epoch 36."""
    _, p = _printed("face-arcface")
    assert p["--model"] == "face_cru_net116" and "'emb_size': 256" in p["--model-kwargs"]
    assert p["--margin"] == "[1.0, 0.5, 0.0]" and float(p["--margin-s"]) == 64
    assert (int(p["--batch-size"]), int(p["--devices"]), float(p["--lr"]), int(p["--epochs"])) == (80, 8, 0.1, 36)
    assert p["--lr-step-unit"] == "iter"
    assert [int(float(v)) for v in p["--lr-steps"].strip("[]").split(",")] == [80000, 160000, 320000, 400000, 560000]


def test_recipe_cli_prints_and_values_can_be_overridden():
    run = _cli("--recipe", "cifar10-attention", "--batch-size", "64", "--dry-run")
    assert run.returncode == 0, run.stderr
    assert re.search(r"--batch-size 128\s+\(overridden: 64\)", run.stdout)
    assert "seed command: python train.py --num-layers 56" in run.stdout


# --- user errors: one clear line, exit 2, nothing written ---------------------------------

@pytest.mark.parametrize("args, message", [
    (["--model", "attention5", "--data", "digits"], "unknown model 'attention5'"),
    (["--model", "slim_attention56", "--data", "/nonexistent/cifar"], "data not found"),
    (["--recipe", "imagenet-af"], "unknown recipe 'imagenet-af'"),
    (["--model", "slim_attention56", "--data", "digits", "--dtype", "float16"], "needs a GPU"),
    (["--model", "slim_attention56", "--data", "digits", "--kvstore", "horovod"], "Horovod"),
    (["--model", "slim_attention56", "--data", "digits", "--kvstore", "dist_sync"], "--launch local"),
    (["--model", "slim_attention56", "--data", "digits", "--freeze", "stage9"], "stages are stem, stage1"),
    (["--model", "slim_attention56", "--data", "digits", "--resume"], "no checkpoint"),
])
def test_user_errors(tmp_path, args, message):
    """Each is a UsageError naming the problem (the CLI prints it and exits 2, see below)."""
    from caffe2mx.commands.train import add_arguments
    from caffe2mx.converter.errors import UsageError
    from caffe2mx.mxmodels.training.options import DEFAULTS
    import argparse
    if "horovod" in args:
        try:
            import horovod.mxnet  # noqa: F401
            pytest.skip("Horovod is installed here")
        except ImportError:
            pass
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = tmp_path / "out"
    options = {k: v for k, v in vars(parser.parse_args([*args, "--out", str(out)])).items() if k in DEFAULTS}
    with pytest.raises(UsageError, match=re.escape(message)):
        train(quiet=True, **options)
    assert not (out.exists() and any(out.glob("model-*.params")))


def test_cli_error_is_one_line_and_exit_2(tmp_path):
    run = _cli("--model", "attention5", "--data", "digits", "--out", str(tmp_path / "o"))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.startswith("caffe2mx train: error: unknown model 'attention5'")


def test_pretrained_true_is_a_clear_error():
    from caffe2mx.mxmodels import get_model
    with pytest.raises(ValueError, match="ships no pretrained weights"):
        get_model("attention56", pretrained=True)
