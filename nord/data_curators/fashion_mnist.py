"""Fashion-MNIST from the official IDX ``.gz`` files, as in-memory tensors.

The root directory is found in this order (DESIGN §5): an explicit ``root``
argument, ``$NORD_DATA/fashion-mnist``, Debian's ``dataset-fashion-mnist``
location (``/usr/share/datasets/fashion-mnist``). Missing data is a
:class:`~nord.errors.DataNotFoundError` that says how to get it.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch

from nord.errors import DataNotFoundError

__all__ = ["FASHION_MNIST_CLASSES", "DEBIAN_FASHION_MNIST", "read_idx",
           "find_fashion_mnist", "load_fashion_mnist"]

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# Mean and standard deviation of the training images' pixels (scaled to 0..1).
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:  # BadGzipFile is an OSError
        raise DataNotFoundError(f"{path} could not be read ({error}); it is damaged or not "
                                f"a gzipped IDX file: re-download it") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataNotFoundError(f"{path} is not an IDX file (bad magic number); "
                                f"re-download the official Fashion-MNIST files")
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    offset = 4 + 4 * dims
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - offset != expected:
        raise DataNotFoundError(f"{path} is truncated: header promises {expected} bytes of "
                                f"data, file holds {len(data) - offset}; re-download it")
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)


def find_fashion_mnist(root: Optional[os.PathLike] = None) -> Path:
    """The directory holding the four Fashion-MNIST files (see module docs)."""
    candidates = []
    if root is not None:
        candidates.append(Path(root))
    elif os.environ.get("NORD_DATA"):
        candidates.append(Path(os.environ["NORD_DATA"]) / "fashion-mnist")
    candidates.append(DEBIAN_FASHION_MNIST)
    needed = [name for pair in _FILES.values() for name in pair]
    for candidate in candidates if root is None else candidates[:1]:
        if all((candidate / name).is_file() for name in needed):
            return candidate
    looked = ", ".join(str(c) for c in (candidates if root is None else candidates[:1]))
    raise DataNotFoundError(
        f"Fashion-MNIST not found (looked in: {looked}). Install Debian's package "
        f"('apt-get install dataset-fashion-mnist'), or put the four official files "
        f"({', '.join(needed)}) in $NORD_DATA/fashion-mnist or pass root= (--data-root on the command line)")


def load_fashion_mnist(split: str = "train", root: Optional[os.PathLike] = None,
                       normalize: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 1, 28, 28)`` float32 and labels ``(N,)`` int64 of one split."""
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    directory = find_fashion_mnist(root)
    images_file, labels_file = _FILES[split]
    images = torch.from_numpy(read_idx(directory / images_file).copy()).float().div_(255.0)
    labels = torch.from_numpy(read_idx(directory / labels_file).astype(np.int64))
    if images.shape[0] != labels.shape[0]:
        raise DataNotFoundError(f"{directory}: {images.shape[0]} images but "
                                f"{labels.shape[0]} labels in the {split} split")
    images = images.unsqueeze(1)
    if normalize:
        images = (images - FASHION_MNIST_MEAN) / FASHION_MNIST_STD
    return images, labels
