"""Data kinds on small files made here: CIFAR python batches, an image-folder tree, an
ImageNet-style RecordIO pair, sharding, and seeded per-epoch order and augmentation."""
import pickle
from io import BytesIO
from types import SimpleNamespace

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from caffe2mx.converter.errors import UsageError
from caffe2mx.mxmodels.training.data import Shard, detect, open_data
from caffe2mx.mxmodels.training.options import DEFAULTS


def _cfg(**kw):
    return SimpleNamespace(**dict(DEFAULTS, **kw))


def _cifar10(folder, n=20):
    rng = np.random.RandomState(0)
    folder.mkdir()
    truth = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.randint(0, 256, (n, 3072)).astype(np.uint8)
        labels = list(rng.randint(0, 10, n))
        truth[name] = (data, labels)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)
    return truth


def test_cifar10_folder_reads_all_batches_and_test_split(tmp_path):
    truth = _cifar10(tmp_path / "c10")
    assert detect(str(tmp_path / "c10"))[0] == "cifar"
    train, val, kind = open_data(_cfg(data=str(tmp_path / "c10")), 32)
    assert (kind, len(train), len(val), train.classes) == ("cifar", 100, 20, 10)
    np.testing.assert_array_equal(train.images[:20].reshape(20, -1), truth["data_batch_1"][0])
    assert list(val.labels) == truth["test_batch"][1]


def test_shards_are_disjoint_and_epochs_reproducible(tmp_path):
    _cifar10(tmp_path / "c10")
    parts = [open_data(_cfg(data=str(tmp_path / "c10")), 32, Shard(i, 3))[0] for i in range(3)]
    ids = [set(p.ids.tolist()) for p in parts]
    assert sum(len(i) for i in ids) == 100 and len(set.union(*ids)) == 100
    one = parts[0]
    a = [x for x, _ in one.batches(8, 3, np.random.default_rng([0, 1, 0]), augment=True)]
    b = [x for x, _ in one.batches(8, 3, np.random.default_rng([0, 1, 0]), augment=True)]
    c = [x for x, _ in one.batches(8, 3, np.random.default_rng([0, 2, 0]), augment=True)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def _png(img):
    buf = BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def test_image_folder_tree(tmp_path):
    rng = np.random.RandomState(1)
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            d = tmp_path / "imgs" / split / cls
            d.mkdir(parents=True)
            for i in range(3):
                (d / f"{i}.png").write_bytes(_png(rng.randint(0, 256, (40, 50, 3)).astype(np.uint8)))
    train, val, kind = open_data(_cfg(data=str(tmp_path / "imgs")), 32)
    assert (kind, len(train), len(val), train.classes) == ("folder", 6, 6, 2)
    x, y = next(train.batches(4, 1, np.random.default_rng(0), augment=True))
    assert x.shape == (4, 3, 32, 32) and set(y) <= {0, 1}
    x, y = next(val.batches(6))
    assert x.shape == (6, 3, 32, 32) and list(y) == [0, 0, 0, 1, 1, 1]


def test_recordio_pair(tmp_path):
    rng = np.random.RandomState(2)
    for split, n in (("train", 12), ("val", 4)):
        rec = mx.recordio.MXIndexedRecordIO(str(tmp_path / f"{split}.idx"), str(tmp_path / f"{split}.rec"), "w")
        for i in range(n):
            img = rng.randint(0, 256, (40, 40, 3)).astype(np.uint8)
            rec.write_idx(i, mx.recordio.pack(mx.recordio.IRHeader(0, float(i % 3), i, 0), _png(img)))
        rec.close()
    cfg = _cfg(data=str(tmp_path / "train.rec"), batch_size=4, classes=3)
    train, val, kind = open_data(cfg, 32, Shard(1, 2))
    assert kind == "rec" and len(train) == 6 and val is not None
    batches = list(train.batches(3, 2, np.random.default_rng(0)))
    assert len(batches) == 2 and batches[0][0].shape == (3, 3, 32, 32)
    assert batches[0][0].asnumpy().max() > 1     # 0..255 pixels, normalised later
    xs = [x for x, _ in val.batches(4)]
    assert sum(len(x) for x in xs) == 4


def test_bad_data_specs(tmp_path):
    with pytest.raises(UsageError, match="data not found"):
        detect(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="not a CIFAR batch folder"):
        detect(str(tmp_path / "empty"))
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(UsageError, match="RecordIO"):
        detect(str(tmp_path / "x.txt"))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(UsageError, match="missing|cannot read"):
        open_data(_cfg(data=str(tmp_path / "c")), 32)
