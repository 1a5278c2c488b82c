"""Fashion-MNIST from the official IDX ``.gz`` files, as in-memory tensors.

The root directory is found in this order (DESIGN §5): an explicit ``root``
argument, ``$NORD_DATA/fashion-mnist``, Debian's ``dataset-fashion-mnist``
location (``/usr/share/datasets/fashion-mnist``). Missing data is a
:class:`~nord.errors.DataNotFoundError` that says how to get it. Files are
checked when they load, before any training: an image or another IDX file
where the labels belong, labels outside 0..9, images that are not 28x28, or
counts that differ raise :class:`~nord.errors.DamagedDataError` naming the file.
The loader reads MNIST's files just as well (same format and classes count).
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch

from nord.errors import DamagedDataError, DataNotFoundError, SettingsError

__all__ = ["FASHION_MNIST_CLASSES", "DEBIAN_FASHION_MNIST", "read_idx", "sniff_format",
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
_GZIP_MAGIC = b"\x1f\x8b"
# What a file that is not IDX most likely is, by its first bytes (for the message).
_OTHER_FORMATS = ((b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG\r\n\x1a\n", "a PNG image"),
                  (b"GIF8", "a GIF image"), (b"BM", "a BMP image"), (b"II*\x00", "a TIFF image"),
                  (b"MM\x00*", "a TIFF image"), (b"PK\x03\x04", "a zip archive"),
                  (b"%PDF", "a PDF document"))
_SIDE = 28


def sniff_format(data: bytes) -> str:
    """``'a JPEG image'`` etc. when ``data`` starts like a known non-IDX format, else ''."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "a WebP image"
    return next((name for magic, name in _OTHER_FORMATS if data.startswith(magic)), "")


def read_idx(path, expected: str = "an IDX file") -> np.ndarray:
    """Read an IDX file (gzipped or not, told by its content) into a numpy array.

    A file that is not IDX (an image, a truncated or damaged gzip file, a
    header promising more data than there is) raises
    :class:`~nord.errors.DamagedDataError` naming the file and ``expected``.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataNotFoundError(f"{path} could not be read ({error}); expected {expected}: "
                                f"check the path and its permissions") from error
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except EOFError as error:
            raise DamagedDataError(f"{path} is truncated (its gzip stream ends early); "
                                   f"expected {expected}: re-download it") from error
        except (OSError, zlib.error) as error:  # BadGzipFile is an OSError
            raise DamagedDataError(f"{path} could not be read ({error}); it is damaged or "
                                   f"not a gzipped IDX file: re-download it") from error
    kind = sniff_format(data)
    if kind:
        raise DamagedDataError(f"{path} is {kind}, not an IDX file; expected {expected}: "
                               f"put the official file there")
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DamagedDataError(f"{path} is not an IDX file (bad magic number); expected "
                               f"{expected}: re-download the official Fashion-MNIST files")
    dims = data[3]
    offset = 4 + 4 * dims
    if len(data) < offset:
        raise DamagedDataError(f"{path} is truncated: its header promises {dims} dimensions "
                               f"but the file ends after {len(data)} bytes; re-download it")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected_bytes = math.prod(shape) * dtype.itemsize
    held = len(data) - offset
    if held < expected_bytes:
        raise DamagedDataError(f"{path} is truncated: header promises {expected_bytes} bytes "
                               f"of data, file holds {held}; re-download it")
    if held > expected_bytes:
        raise DamagedDataError(f"{path} holds {held - expected_bytes} bytes after the "
                               f"{expected_bytes} its header promises; it is damaged: "
                               f"re-download it")
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)


def _describe(array: np.ndarray) -> str:
    return f"an IDX array of shape {tuple(array.shape)} ({array.dtype})"


def _read_labels(path: Path) -> np.ndarray:
    """The labels file's labels, checked: uint8, one dimension, 0..9."""
    expected = "a labels file (IDX, uint8, one dimension)"
    labels = read_idx(path, expected)
    if labels.ndim != 1 or labels.dtype != np.uint8:
        looks = " (an images file?)" if labels.ndim == 3 else ""
        raise DamagedDataError(f"{path} holds {_describe(labels)}{looks}, not labels; "
                               f"expected {expected}: put the official {path.name} there")
    classes = len(FASHION_MNIST_CLASSES)
    if labels.size and int(labels.max()) >= classes:
        item = int(np.argmax(labels >= classes))
        raise DamagedDataError(f"{path}: label {int(labels[item])} of item {item} is outside "
                               f"0..{classes - 1} ({classes} classes); put the official "
                               f"{path.name} there")
    return labels


def _read_images(path: Path, count: int, labels_path: Path) -> np.ndarray:
    """The images file's images, checked: uint8 ``(count, 28, 28)``."""
    expected = f"an images file (IDX, uint8, shape (N, {_SIDE}, {_SIDE}))"
    images = read_idx(path, expected)
    if images.ndim != 3 or images.shape[1:] != (_SIDE, _SIDE) or images.dtype != np.uint8:
        raise DamagedDataError(f"{path} holds {_describe(images)}; expected {expected}: put "
                               f"the official {path.name} there")
    if images.shape[0] != count:
        raise DamagedDataError(f"{path} holds {images.shape[0]} images but {labels_path} "
                               f"holds {count} labels; one of them is cut short or from "
                               f"another set: re-download both")
    return images


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
        raise SettingsError(f"split must be 'train' or 'test', got {split!r}")
    directory = find_fashion_mnist(root)
    images_file, labels_file = _FILES[split]
    labels = _read_labels(directory / labels_file)  # small: a wrong file fails fast
    images = _read_images(directory / images_file, labels.shape[0], directory / labels_file)
    images = torch.from_numpy(images.copy()).float().div_(255.0)
    labels = torch.from_numpy(labels.astype(np.int64))
    images = images.unsqueeze(1)
    if normalize:
        images = (images - FASHION_MNIST_MEAN) / FASHION_MNIST_STD
    return images, labels
