"""Fashion-MNIST loader (IDX format, gzip), shared by the diffode training scripts.

Images are returned as float32 arrays of shape [N, 1, 28, 28] scaled to [-1, 1]
(x = pixel / 127.5 - 1), labels as int64 arrays of shape [N].
"""

import gzip
import os
import struct

import numpy as np

DATA_DIR = "/usr/share/datasets/fashion-mnist"

CLASS_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


def _read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file" % path)
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(data) - offset != count:
        raise ValueError("%s: expected %d bytes of data, found %d"
                         % (path, count, len(data) - offset))
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def load_split(split, data_dir=DATA_DIR):
    """split: "train" (60000) or "test" (the t10k split, 10000).

    Returns (images float32 [N,1,28,28] in [-1,1], labels int64 [N])."""
    prefix = {"train": "train", "test": "t10k"}[split]
    images = _read_idx(os.path.join(data_dir, prefix + "-images-idx3-ubyte.gz"))
    labels = _read_idx(os.path.join(data_dir, prefix + "-labels-idx1-ubyte.gz"))
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise ValueError("unexpected IDX shapes %s / %s" % (images.shape, labels.shape))
    x = images.astype(np.float32)[:, None, :, :] / np.float32(127.5) - np.float32(1.0)
    return x, labels.astype(np.int64)


def first_per_class(labels, per_class=100):
    """Indices of the first `per_class` examples of each class, class-major order."""
    idx = []
    for c in range(10):
        hits = np.nonzero(labels == c)[0][:per_class]
        if len(hits) != per_class:
            raise ValueError("class %d has only %d examples" % (c, len(hits)))
        idx.append(hits)
    return np.concatenate(idx)


if __name__ == "__main__":
    for s in ("train", "test"):
        x, y = load_split(s)
        print(s, x.shape, x.dtype, float(x.min()), float(x.max()), np.bincount(y))
