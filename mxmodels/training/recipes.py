"""Presets that reproduce each seed's training command line (`--recipe NAME`).

Every recipe keeps the seed's own command (`command`) and where it comes from (`source`),
and maps it onto caffe2mx's options (`options`); `describe` prints what a recipe sets.
Options the user gives explicitly win over the recipe's. Learning rates are stated at the
seed's global batch (`base_batch` = per-device batch x devices) and scaled linearly to the
global batch of the actual run, as the seeds' papers (Goyal et al.; the bag-of-tricks paper
the AFF/ATAC/RAN seeds follow) prescribe.
"""
from dataclasses import dataclass, field

from caffe2mx.converter.errors import UsageError

IMAGENET_AUG = "random resized crop (area 0.08-1, ratio 3/4-4/3), mirror, jitter 0.4, PCA noise 0.1"


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    source: str
    command: str
    options: dict
    notes: tuple = field(default_factory=tuple)


RECIPES = {r.name: r for r in (
    Recipe(
        "digits-demo",
        "slim Residual Attention-56 on scikit-learn's 8x8 digits (upscaled to 32x32), CPU minutes",
        "this project (no seed): the CI-sized demonstration of the trainer",
        "caffe2mx train --recipe digits-demo --out DIR",
        dict(model="slim_attention56", data="digits", epochs=12, batch_size=32, lr=0.1,
             lr_mode="cosine", warmup_epochs=1, optimizer="nag", momentum=0.9, wd=1e-4,
             init="msra", num_workers=1),
        ("slim_attention56 = cifar_attention56 at 1/8 width (16/32/64/128, stem 8), 0.118M "
         "parameters",)),
    Recipe(
        "cifar10-attention",
        "Attention-56 on CIFAR-10 with the tricks; the seed table's best row (0.965044)",
        "haoxintong/ResidualAttentionNetwork-Gluon: Readme.md tricks table row "
        "'56 | 1024 | 1.6 | 10 | True | 1.0 | - | 0.965044'; scripts/train_bps.sh; train.py",
        "python train.py --num-layers 56 --workers 2 --batch-size 128 --epochs 200 --mix-up 1 "
        "--alpha 1.0 --lr 1.6 --epsilon 0.0 --float16 0 --warmup-epochs 10  # on 8 GPUs (BytePS)",
        dict(model="cifar_attention56", epochs=200, batch_size=128, devices=8, base_batch=1024,
             lr=1.6, lr_mode="cosine", final_lr=1e-8, warmup_epochs=10, warmup_lr=0.016,
             mixup=True, mixup_alpha=1.0, mixup_off_epochs=20, label_smoothing=None,
             optimizer="nag", momentum=0.9, wd=1e-4, init="msra",
             mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
        ("train.py: linear warmup from lr*0.01, then cosine to 1e-8; mixup while epoch < 0.9 * "
         "epochs (the last 20 of 200 without)", "epsilon 0.0: no label smoothing in the best row",
         "augmentation: pad to 40x40 (paste ratio 1.25), random 32x32 crop, mirror",
         "the seed's net has haoxintong's 3/2/1 mask pools; cifar_attention56 follows the "
         "PistonY/tengshaofeng layout (docs/architectures.md section 2)")),
    Recipe(
        "imagenet-aff",
        "AFF-ResNet-50 on ImageNet (RecordIO), paper-era command",
        "YimianDai/open-aff cmd_scripts.txt at 806562e, 'ResNet-50-AFF - ImageNet'; "
        "train_imagenet.py defaults",
        "python train_imagenet.py --askc-type ASKCFuse --mixup --mode hybrid --lr 0.075 "
        "--lr-mode cosine --num-epochs 180 --batch-size 128 --num-gpus 2 -j 48 --warmup-epochs 5 "
        "--dtype float16 --use-rec --last-gamma --no-wd --label-smoothing",
        dict(model="aff_resnet50", epochs=180, batch_size=128, devices=2, base_batch=256, lr=0.075,
             lr_mode="cosine", warmup_epochs=5, warmup_lr=0.0, mixup=True, mixup_alpha=0.2,
             mixup_off_epochs=0, label_smoothing=0.1, last_gamma=True, no_wd=True,
             dtype="float16", mode="hybrid", optimizer="nag", momentum=0.9, wd=1e-4, init="msra",
             num_workers=48),
        ("train_imagenet.py defaults: nag, momentum 0.9, wd 1e-4, mixup alpha 0.2, smoothing "
         "eta 0.1, warmup from 0", f"augmentation: {IMAGENET_AUG}; val: resize 256, centre 224")),
    Recipe(
        "cifar100-aff",
        "AFF-ResNet-32 on CIFAR-100 with step decay, paper-era command",
        "YimianDai/open-aff cmd_scripts.txt at 806562e, 'ResNet32_aff - cifar'; train_cifar.py",
        "python train_cifar.py --model resnet --dataset cifar100 --blocks 5 --channel-times 4 "
        "--gpus 0 --start-layer 1 --num-epochs 400 --mode hybrid -j 2 --batch-size 128 --wd 0.0001 "
        "--lr 0.2 --lr-decay 0.1 --lr-decay-epoch 300,350",
        dict(model="cifar_aff_resnet32", epochs=400, batch_size=128, devices=1, base_batch=128,
             lr=0.2, lr_mode="step", lr_steps=[300, 350], lr_decay=0.1, mixup=True,
             mixup_alpha=1.0, mixup_off_epochs=20, optimizer="nag", momentum=0.9, wd=1e-4,
             init="xavier", mode="hybrid", num_workers=2),
        ("train_cifar.py always mixes up with Beta(1, 1) and stops for the last 20 epochs; nag; "
         "Xavier init", "augmentation: pad-4 random crop, mirror; CIFAR mean/std")),
    Recipe(
        "imagenet-atac",
        "ATAC-ResNet-50 (r=2, act-layers 2) on ImageNet (RecordIO)",
        "YimianDai/open-atac README.md 'Training script'; params/resnet50_v1b_ChaATAC_2.log",
        "python train_imagenet.py --mode hybrid --lr 0.075 --lr-mode cosine --num-epochs 160 "
        "--batch-size 128 --num-gpus 2 -j 48 --warmup-epochs 5 --dtype float16 --use-rec "
        "--last-gamma --no-wd --label-smoothing --r 2 --act-layers 2",
        dict(model="atac_resnet50", model_kwargs={"r": 2, "act_layers": 2}, epochs=160,
             batch_size=128, devices=2, base_batch=256, lr=0.075, lr_mode="cosine",
             warmup_epochs=5, warmup_lr=0.0, mixup=False, label_smoothing=0.1, last_gamma=True,
             no_wd=True, dtype="float16", mode="hybrid", optimizer="nag", momentum=0.9, wd=1e-4,
             init="msra", num_workers=48),
        ("the seed command has no --mixup (its log prints mixup=False), unlike AFF's",
         f"augmentation: {IMAGENET_AUG}")),
    Recipe(
        "face-arcface",
        "modified CRU-Net-116 with ArcFace in insightface's setting (LFW 0.99867 at epoch 36)",
        "bruinxiong's report in deepinsight/insightface issue #215 (2018-07-22) and "
        "Modified-CRUNet README; insightface train_softmax.py defaults",
        "network c116 (res_unit=3, output=E, emb_size=256, prelu), loss arcface(m=0.5), "
        "aug_color 0.1, random_crop 0.9, input 112x112, batch size 80 (8 GPUs), lr 0.1, "
        "lr steps [80000, 160000, 320000, 400000, 560000], epoch 36",
        dict(model="face_cru_net116", model_kwargs={"emb_size": 256}, epochs=36, batch_size=80,
             devices=8, base_batch=640, lr=0.1, lr_mode="step", lr_step_unit="iter",
             lr_steps=[80000, 160000, 320000, 400000, 560000], lr_decay=0.1, margin=[1.0, 0.5, 0.0],
             margin_s=64.0, optimizer="sgd", momentum=0.9, wd=5e-4, init="xavier-out", jitter=0.1),
        ("'batch size: 80(8 GPUs)' is read as insightface's --per-batch-size 80 on each of 8 GPUs",
         "insightface defaults: SGD momentum 0.9, wd 5e-4, s = 64, Xavier(gaussian, out, 2)",
         "augmentation: mirror, colour 0.1 (random_crop 0.9 is not reproduced)")),
)}


def recipe(name):
    try:
        return RECIPES[name]
    except KeyError:
        raise UsageError(f"unknown recipe '{name}'; recipes: {', '.join(RECIPES)}") from None


def recipe_options(name):
    return dict(recipe(name).options)


def describe(name, cfg=None):
    """Lines stating what recipe `name` sets (and, given the resolved cfg, what was overridden)."""
    from .options import flag as option_flag
    r = recipe(name)
    lines = [f"recipe {r.name}: {r.summary}", f"  source: {r.source}", f"  seed command: {r.command}",
             "  sets:"]
    for key, value in r.options.items():
        flag = option_flag(key)
        over = ""
        if cfg is not None and key in cfg.explicit and getattr(cfg, key) != value:
            over = f"   (overridden: {getattr(cfg, key)})"
        lines.append(f"    {flag} {_fmt(value)}{over}")
    lines += [f"  note: {n}" for n in r.notes]
    return lines


def _fmt(value):
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "off"
    if isinstance(value, (list, tuple)):
        return ",".join(_fmt(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={_fmt(v)}" for k, v in value.items())
    if isinstance(value, float) and value == int(value) and abs(value) >= 1:
        return str(int(value))
    return str(value)
