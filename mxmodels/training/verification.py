"""Face verification on insightface's `.bin` pair files, scored as insightface reports it.

A `.bin` (lfw.bin, cfp_fp.bin, agedb_30.bin, ...) is a pickle of (list of 2N encoded
images, list of N same-identity flags). Accuracy is 10-fold: for each fold, the distance
threshold (squared L2 between normalised embeddings, flip-augmented) that is best on the
other nine folds is applied to it; the result is the mean and std over the folds.
"""
import pickle
from io import BytesIO
from pathlib import Path

import numpy as np

from caffe2mx.converter.errors import UsageError

THRESHOLDS = np.arange(0, 4, 0.01)


def load_bin(path, image_size=112):
    """(uint8 images N2xCxHxW, bool issame N) from an insightface .bin file."""
    import mxnet as mx
    path = Path(path)
    try:
        with open(path, "rb") as f:
            bins, issame = pickle.load(f, encoding="bytes")
    except (OSError, pickle.UnpicklingError, ValueError, EOFError, TypeError) as exc:
        raise UsageError(f"{path}: not an insightface verification .bin file ({exc})") from None
    if len(bins) != 2 * len(issame):
        raise UsageError(f"{path}: {len(bins)} images for {len(issame)} pairs (needs two per pair)")
    images = np.empty((len(bins), 3, image_size, image_size), np.uint8)
    for i, raw in enumerate(bins):
        img = mx.image.imdecode(bytes(raw))
        if img.shape[0] != image_size or img.shape[1] != image_size:
            img = mx.image.imresize(img, image_size, image_size)
        images[i] = img.asnumpy().transpose(2, 0, 1)
    return images, np.asarray(issame, bool)


def write_bin(path, images, issame):
    """Write uint8 NxCxHxW (or NxHxWxC) images and N/2 flags as an insightface .bin (PNG-encoded)."""
    from PIL import Image
    images = np.asarray(images, np.uint8)
    if images.shape[1] == 3:
        images = images.transpose(0, 2, 3, 1)
    bins = []
    for img in images:
        buf = BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        bins.append(buf.getvalue())
    with open(path, "wb") as f:
        pickle.dump((bins, [bool(s) for s in issame]), f, protocol=pickle.HIGHEST_PROTOCOL)


def normalise(embeddings):
    e = np.asarray(embeddings, np.float64)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def _accuracy(threshold, dist, issame):
    return float(np.mean((dist < threshold) == issame))


def evaluate(embeddings, issame, folds=10):
    """(mean accuracy, std, mean best threshold) of 10-fold verification; `embeddings` holds
    the 2N embeddings in pair order (already flip-summed if wanted)."""
    from sklearn.model_selection import KFold
    e = normalise(embeddings)
    dist = np.sum((e[0::2] - e[1::2]) ** 2, axis=1)
    issame = np.asarray(issame, bool)
    accs, thresholds = [], []
    for train, test in KFold(n_splits=folds, shuffle=False).split(dist):
        train_acc = [_accuracy(t, dist[train], issame[train]) for t in THRESHOLDS]
        best = THRESHOLDS[int(np.argmax(train_acc))]
        thresholds.append(best)
        accs.append(_accuracy(best, dist[test], issame[test]))
    return float(np.mean(accs)), float(np.std(accs)), float(np.mean(thresholds))


def embed(net, images, normalise_fn, ctx, batch_size=64):
    """Embeddings of uint8 images with horizontal-flip augmentation (original + flipped)."""
    import mxnet as mx
    out = []
    for i in range(0, len(images), batch_size):
        x = normalise_fn(mx.nd.array(images[i:i + batch_size], ctx=ctx))
        e = net(x) + net(x.flip(axis=3))
        out.append(e.asnumpy())
    return np.concatenate(out)
