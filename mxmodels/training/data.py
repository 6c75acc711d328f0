"""Training and validation data: one `open_data` for every supported kind.

Kinds (auto-detected from the path, or forced as KIND:PATH):
- `digits`: scikit-learn's bundled 8x8 digits (1797 images, 10 classes; nothing is
  downloaded), upscaled bilinearly to the model's input, a fixed stratified 80/20 split;
- `cifar`: a CIFAR-10 (`data_batch_1..5`, `test_batch`) or CIFAR-100 (`train`, `test`)
  python-pickle folder;
- `rec`: an ImageNet-style RecordIO file (`.rec` + `.idx`) read by MXNet's ImageRecordIter with
  the usual augmentations (random resized crop, mirror, colour jitter, PCA noise, mean/std);
- `folder`: an image-folder tree, one sub-folder per class (or `train/` and `val/` trees);
- `face`: an insightface face folder: `train.rec`/`train.idx` with identity labels, `property`
  ("classes,112,112") and the verification `*.bin` pair files.

Every kind yields batches of float32 NCHW data at the model's input size, normalised as
(pixel - mean) / std on the 0..255 scale, and integer labels. In-memory kinds (digits, CIFAR)
shuffle and augment from a generator seeded by (seed, epoch, shard), so an epoch is the same
whether a run was resumed or not. A worker of a distributed job reads only its shard: every
`num_parts`-th sample from `part_index` (ImageRecordIter's own `num_parts`/`part_index`
for RecordIO); all shards run the same number of steps per epoch.
"""
import math
import pickle
import random
from pathlib import Path

import mxnet as mx
import numpy as np

from caffe2mx.converter.errors import UsageError

KINDS = ("digits", "cifar", "rec", "folder", "face")


class Shard:
    """Which part of the training data this process reads."""

    def __init__(self, part_index=0, num_parts=1):
        self.part_index, self.num_parts = int(part_index), int(num_parts)


def detect(spec):
    """(kind, path) of a data spec."""
    if spec is None:
        raise UsageError("give --data (e.g. --data digits) or a --recipe that sets it")
    text = str(spec)
    if text == "digits":
        return "digits", None
    if ":" in text and text.split(":", 1)[0] in KINDS:
        kind, path = text.split(":", 1)
        return kind, Path(path)
    path = Path(text)
    if not path.exists():
        raise UsageError(f"{path}: data not found (give 'digits', a CIFAR/image folder, a .rec "
                         f"file or a face folder)")
    if path.is_file():
        if path.suffix == ".rec":
            return "rec", path
        raise UsageError(f"{path}: a data file must be a RecordIO .rec (with its .idx)")
    if (path / "data_batch_1").exists() or (path / "train").is_file():
        return "cifar", path
    if (path / "train.rec").exists() and (path / "property").exists():
        return "face", path
    if any(p.is_dir() for p in path.iterdir()):
        return "folder", path
    raise UsageError(f"{path}: not a CIFAR batch folder, an image-folder tree or an insightface "
                     f"face folder")


# --- in-memory arrays -------------------------------------------------------------------

class ArrayData:
    """uint8 NCHW images (any square size) and labels in memory."""

    def __init__(self, images, labels, classes, ids=None, mirror=True, pad=4, name=""):
        self.images = np.ascontiguousarray(images, np.uint8)
        self.labels = np.asarray(labels, np.int64)
        self.ids = np.arange(len(labels)) if ids is None else np.asarray(ids)
        self.classes, self.mirror, self.pad, self.name = int(classes), mirror, int(pad), name

    def __len__(self):
        return len(self.labels)

    def subset(self, n):
        if n is None or n >= len(self):
            return self
        return ArrayData(self.images[:n], self.labels[:n], self.classes, self.ids[:n], self.mirror,
                         self.pad, self.name)

    def shard(self, shard):
        idx = np.arange(shard.part_index, len(self), shard.num_parts)
        part = ArrayData(self.images[idx], self.labels[idx], self.classes, self.ids[idx],
                         self.mirror, self.pad, self.name)
        part.total = len(self)
        return part

    def _augment(self, x, rng):
        """Random crop of the zero-padded image (shift by up to `pad` px) and mirroring."""
        n, _, h, w = x.shape
        if self.pad:
            p = self.pad
            padded = np.zeros((n, x.shape[1], h + 2 * p, w + 2 * p), np.uint8)
            padded[:, :, p:p + h, p:p + w] = x
            dy, dx = rng.integers(0, 2 * p + 1, n), rng.integers(0, 2 * p + 1, n)
            x = np.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
        if self.mirror:
            flip = rng.random(n) < 0.5
            x[flip] = x[flip, :, :, ::-1]
        return x

    def batches(self, batch_size, steps=None, rng=None, augment=False):
        """Yield (uint8 images, labels): shuffled by `rng` when given, `steps` full batches
        (train) or every sample in order with a short last batch (validation)."""
        order = rng.permutation(len(self)) if rng is not None else np.arange(len(self))
        if steps is None:
            starts = range(0, len(self), batch_size)
        else:
            starts = [i * batch_size for i in range(steps)]
        for s in starts:
            idx = order[s:s + batch_size]
            x = self.images[idx]
            if augment:
                x = self._augment(x.copy(), rng)
            yield x, self.labels[idx]


def _resize_uint8(images, side):
    """Bilinear resize of uint8 NCHW images to side x side (MXNet's BilinearResize2D)."""
    if images.shape[2] == side and images.shape[3] == side:
        return images
    out = []
    for i in range(0, len(images), 256):
        x = mx.nd.array(images[i:i + 256], dtype="float32")
        y = mx.nd.contrib.BilinearResize2D(x, height=side, width=side, align_corners=False)
        out.append(np.clip(np.rint(y.asnumpy()), 0, 255).astype(np.uint8))
    return np.concatenate(out)


def load_digits(side):
    """scikit-learn's digits (8x8, values 0..16) as uint8 RGB side x side, split 80/20."""
    try:
        from sklearn.datasets import load_digits as sk_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise UsageError("the digits data needs scikit-learn: pip install 'caffe2mx[train]'") from None
    d = sk_digits()
    gray = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    images = _resize_uint8(np.repeat(gray, 3, axis=1), side)
    ids = np.arange(len(d.target))
    tr, va = train_test_split(ids, test_size=0.2, random_state=0, stratify=d.target)
    # digits are not mirror-symmetric: shifts only (pad of side/8 = one original pixel)
    pad = max(side // 8, 1)
    train = ArrayData(images[tr], d.target[tr], 10, tr, mirror=False, pad=pad, name="digits")
    val = ArrayData(images[va], d.target[va], 10, va, mirror=False, pad=0, name="digits")
    return train, val


def _unpickle(path):
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except (OSError, pickle.UnpicklingError, EOFError) as exc:
        raise UsageError(f"{path}: cannot read CIFAR batch ({exc})") from None


def _cifar_arrays(files, key):
    data, labels = [], []
    for path in files:
        d = _unpickle(path)
        if b"data" not in d or key not in d:
            raise UsageError(f"{path}: not a CIFAR python batch (no {key.decode()} / data)")
        data.append(np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32))
        labels += list(d[key])
    return np.concatenate(data), np.asarray(labels)


def load_cifar(folder, side):
    folder = Path(folder)
    if (folder / "data_batch_1").exists():
        files = [folder / f"data_batch_{i}" for i in range(1, 6)]
        missing = [str(f) for f in files + [folder / "test_batch"] if not f.exists()]
        if missing:
            raise UsageError(f"CIFAR-10 folder incomplete, missing: {', '.join(missing)}")
        x, y = _cifar_arrays(files, b"labels")
        vx, vy = _cifar_arrays([folder / "test_batch"], b"labels")
        classes = 10
    else:
        if not (folder / "test").exists():
            raise UsageError(f"{folder}: CIFAR-100 folder without 'test'")
        x, y = _cifar_arrays([folder / "train"], b"fine_labels")
        vx, vy = _cifar_arrays([folder / "test"], b"fine_labels")
        classes = 100
    pad = 4 * side // 32
    return (ArrayData(_resize_uint8(x, side), y, classes, pad=pad, name="cifar"),
            ArrayData(_resize_uint8(vx, side), vy, classes, pad=0, name="cifar"))


# --- streaming kinds --------------------------------------------------------------------

class RecordData:
    """An ImageRecordIter over a .rec/.idx pair (train: augmented and sharded); it yields
    0..255 pixels, normalised afterwards like every other kind."""

    def __init__(self, rec, side, cfg, train, shard=None, batch_size=32):
        rec = Path(rec)
        idx = rec.with_suffix(".idx")
        for p in (rec, idx):
            if not p.exists():
                raise UsageError(f"{p}: not found (RecordIO data needs the .rec and its .idx)")
        self.count = self.total = sum(1 for _ in open(idx))
        self.classes = None
        self.name = rec.stem
        self.train = train
        self.shard = shard or Shard()
        self.args = dict(path_imgrec=str(rec), path_imgidx=str(idx), data_shape=(3, side, side),
                         batch_size=batch_size, preprocess_threads=max(int(cfg.num_workers), 1))
        if train:
            self.args.update(shuffle=True, num_parts=self.shard.num_parts,
                             part_index=self.shard.part_index, round_batch=True)
            if cfg.augment != "none":
                self.args.update(rand_mirror=True, random_resized_crop=True,
                                 min_random_area=cfg.min_area, max_random_area=1.0,
                                 min_aspect_ratio=3 / 4, max_aspect_ratio=4 / 3,
                                 brightness=cfg.jitter, contrast=cfg.jitter, saturation=cfg.jitter,
                                 pca_noise=cfg.pca_noise)
        else:
            self.args.update(shuffle=False, resize=int(math.ceil(side / cfg.crop_ratio)),
                             round_batch=False)

    def __len__(self):
        return self.count if not self.train else self.count // self.shard.num_parts

    def batches(self, batch_size, steps=None, rng=None, augment=False):
        seed = int(rng.integers(0, 2 ** 31 - 1)) if rng is not None else 0
        it = mx.io.ImageRecordIter(seed=seed, **dict(self.args, batch_size=batch_size))
        for i, batch in enumerate(it):
            if steps is not None and i >= steps:
                break
            n = batch_size - batch.pad
            yield batch.data[0][:n], batch.label[0][:n].asnumpy().astype(np.int64)


def _augmenters(side, cfg, train):
    from mxnet import image as mi
    if not train:
        return [mi.ResizeAug(int(math.ceil(side / cfg.crop_ratio))), mi.CenterCropAug((side, side)),
                mi.CastAug()]
    if cfg.augment == "none":
        return [mi.ForceResizeAug((side, side)), mi.CastAug()]
    eigval = np.array([55.46, 4.794, 1.148])
    eigvec = np.array([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
                       [-0.5836, -0.6948, 0.4203]])
    return [mi.RandomSizedCropAug((side, side), (cfg.min_area, 1.0), (3 / 4, 4 / 3), 2),
            mi.HorizontalFlipAug(0.5), mi.CastAug(),
            mi.ColorJitterAug(cfg.jitter, cfg.jitter, cfg.jitter),
            mi.LightingAug(cfg.pca_noise, eigval, eigvec)]


class FolderData:
    """An image-folder tree: one sub-folder of images per class, decoded on the fly."""

    EXTS = {".jpg", ".jpeg", ".png", ".bmp"}

    def __init__(self, root, side, cfg, train, classes=None):
        root = Path(root)
        names = classes or sorted(p.name for p in root.iterdir() if p.is_dir())
        if not names:
            raise UsageError(f"{root}: no class sub-folders")
        self.class_names = list(names)
        self.classes = len(names)
        self.items = [(str(f), k) for k, n in enumerate(names) if (root / n).is_dir()
                      for f in sorted((root / n).iterdir()) if f.suffix.lower() in self.EXTS]
        if not self.items:
            raise UsageError(f"{root}: no images ({', '.join(sorted(self.EXTS))}) in the class folders")
        self.ids = np.arange(len(self.items))
        self.augs = _augmenters(side, cfg, train)
        self.name = root.name
        self.train = train

    def __len__(self):
        return len(self.items)

    def subset(self, n):
        if n is not None:
            self.items, self.ids = self.items[:n], self.ids[:n]
        return self

    def shard(self, shard):
        self.total = len(self.items)
        self.items = self.items[shard.part_index::shard.num_parts]
        self.ids = self.ids[shard.part_index::shard.num_parts]
        return self

    def _load(self, path):
        with open(path, "rb") as f:
            img = mx.image.imdecode(f.read())
        for aug in self.augs:
            img = aug(img)
        return img.astype("float32").transpose((2, 0, 1))

    def batches(self, batch_size, steps=None, rng=None, augment=False):
        if rng is not None:
            random.seed(int(rng.integers(0, 2 ** 31 - 1)))
            np.random.seed(int(rng.integers(0, 2 ** 31 - 1)))
        order = rng.permutation(len(self)) if rng is not None else np.arange(len(self))
        starts = range(0, len(self), batch_size) if steps is None else \
            [i * batch_size for i in range(steps)]
        for s in starts:
            idx = order[s:s + batch_size]
            x = mx.nd.stack(*[self._load(self.items[i][0]) for i in idx])
            yield x, np.asarray([self.items[i][1] for i in idx], np.int64)


class FaceRecData:
    """insightface training records: header record 0 gives the image index range; each image
    record's label is its identity."""

    def __init__(self, folder, side, cfg):
        folder = Path(folder)
        try:
            prop = (folder / "property").read_text().strip().split(",")
            self.classes = int(prop[0])
        except (OSError, ValueError, IndexError):
            raise UsageError(f"{folder / 'property'}: expected 'classes,height,width'") from None
        self.reader = mx.recordio.MXIndexedRecordIO(str(folder / "train.idx"),
                                                    str(folder / "train.rec"), "r")
        header, _ = mx.recordio.unpack(self.reader.read_idx(0))
        if header.flag > 0:
            self.ids = np.arange(1, int(header.label[0]))
        else:
            self.ids = np.asarray(sorted(self.reader.keys))
        self.side = side
        self.mirror = cfg.augment != "none"
        self.color = cfg.jitter if cfg.augment != "none" else 0.0
        self.name = folder.name

    def __len__(self):
        return len(self.ids)

    def subset(self, n):
        if n is not None:
            self.ids = self.ids[:n]
        return self

    def shard(self, shard):
        self.total = len(self.ids)
        self.ids = self.ids[shard.part_index::shard.num_parts]
        return self

    def _load(self, key, rng):
        header, raw = mx.recordio.unpack(self.reader.read_idx(int(key)))
        label = header.label if np.isscalar(header.label) else header.label[0]
        img = mx.image.imdecode(raw)
        if img.shape[0] != self.side or img.shape[1] != self.side:
            img = mx.image.imresize(img, self.side, self.side)
        x = img.asnumpy().astype(np.float32)
        if rng is not None and self.mirror and rng.random() < 0.5:
            x = x[:, ::-1]
        if rng is not None and self.color:
            x = x * (1 + rng.uniform(-self.color, self.color))
            gray = x.mean()
            x = gray + (x - gray) * (1 + rng.uniform(-self.color, self.color))
            x = np.clip(x, 0, 255)
        return x.transpose(2, 0, 1), int(label)

    def batches(self, batch_size, steps=None, rng=None, augment=False):
        order = rng.permutation(len(self)) if rng is not None else np.arange(len(self))
        starts = range(0, len(self), batch_size) if steps is None else \
            [i * batch_size for i in range(steps)]
        for s in starts:
            pairs = [self._load(self.ids[i], rng if augment else None) for i in order[s:s + batch_size]]
            yield (mx.nd.array(np.stack([p[0] for p in pairs])),
                   np.asarray([p[1] for p in pairs], np.int64))


class VerificationData:
    """insightface .bin pair files, the validation of a face run."""

    def __init__(self, files, side):
        from .verification import load_bin
        if not files:
            raise UsageError("face validation needs at least one .bin pair file")
        self.sets = [(Path(f).stem, *load_bin(f, side)) for f in files]
        self.name = self.sets[0][0]

    def __len__(self):
        return sum(len(s[2]) for s in self.sets)


# --- entry point ------------------------------------------------------------------------

def open_data(cfg, side, shard=None):
    """(train source, validation source or None, kind) for a resolved config."""
    shard = shard or Shard()
    kind, path = detect(cfg.data)
    if kind == "digits":
        train, val = load_digits(side)
    elif kind == "cifar":
        train, val = load_cifar(path, side)
    elif kind == "rec":
        train = RecordData(path, side, cfg, True, shard, cfg.batch_size)
        val_path = Path(cfg.val_data) if cfg.val_data else path.with_name(path.name.replace("train", "val"))
        val = RecordData(val_path, side, cfg, False) if val_path.exists() and val_path != path else None
        return train, val, kind
    elif kind == "folder":
        root = path / "train" if (path / "train").is_dir() else path
        train = FolderData(root, side, cfg, True)
        val_root = Path(cfg.val_data) if cfg.val_data else (path / "val" if (path / "val").is_dir() else None)
        val = FolderData(val_root, side, cfg, False, train.class_names) if val_root else None
    else:
        train = FaceRecData(path, side, cfg)
        bins = [Path(p) for p in str(cfg.val_data).split(",")] if cfg.val_data else \
            sorted(path.glob("*.bin"))
        val = VerificationData(bins, side) if bins else None
        train = train.subset(cfg.train_samples).shard(shard)
        return train, val, kind
    if cfg.val_data and kind == "cifar":
        _, val = load_cifar(detect(cfg.val_data)[1], side)
    if cfg.augment == "none" and isinstance(train, ArrayData):
        train.mirror, train.pad = False, 0
    train = train.subset(cfg.train_samples).shard(shard)
    if val is not None and hasattr(val, "subset"):
        val = val.subset(cfg.val_samples)
    return train, val, kind


def normaliser(mean, std, ctx):
    """uint8/float NCHW batch (NDArray or numpy) -> float32 (x - mean) / std on `ctx`."""
    m = mx.nd.array(np.asarray(mean, np.float32).reshape(1, 3, 1, 1), ctx=ctx)
    s = mx.nd.array(np.asarray(std, np.float32).reshape(1, 3, 1, 1), ctx=ctx)

    def apply(x):
        if not isinstance(x, mx.nd.NDArray):
            x = mx.nd.array(x, ctx=ctx, dtype="float32")
        x = x.astype("float32", copy=False).as_in_context(ctx)
        return mx.nd.broadcast_div(mx.nd.broadcast_sub(x, m), s)
    return apply
