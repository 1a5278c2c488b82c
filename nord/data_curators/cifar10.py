"""CIFAR-10 as in-memory tensors, from the official files or class-folder images.

Two on-disk formats are read:

* the official ``cifar-10-batches-py`` folder (``data_batch_1`` .. ``data_batch_5``
  and ``test_batch``). That format is Python pickles, and unpickling can run code,
  so **only load pickle files you trust** (the official tarball, checked against
  :data:`CIFAR10_SHA256` when NORD downloads it). As a second line of defence the
  batches are read with NORD's restricted unpickler (:mod:`nord.safe_pickle`,
  :data:`~nord.safe_pickle.NUMPY_ARRAYS`), which only rebuilds numpy arrays,
  lists, dicts, numbers and strings and refuses anything else.
* class-folder image trees ``<root>/{train,test}/<class>/*.{png,jpg,jpeg}`` with
  the ten official class names (sorted alphabetically they are the official label
  order). Images are decoded once with Pillow and the arrays are cached as
  ``.npy`` files with a JSON manifest that is checked on every load.

* a tar archive of such a tree, like the JPEG copy of CIFAR-10
  (``cifar10-jpeg.tar.gz``). :func:`load_jpeg_archive` decodes it straight from
  the archive (writing 60,000 small files first costs far more than decoding);
  :func:`extract_cifar10_jpeg` extracts it into the cache for whoever wants the
  files, and an extracted copy there is found like any other tree.

Where the data is looked for, in order (DESIGN §5): an explicit ``root`` (any of
the three); ``$NORD_DATA/cifar10`` (batches or tree); the JPEG archive given as
``archive=`` or found at ``$NORD_DATA/cifar10-jpeg/cifar10-jpeg.tar.gz``; the user
cache (``cache_dir()/cifar10``: batches or an extracted tree), where the official
tarball is downloaded and extracted when downloads are allowed
(:func:`~nord.data_curators.download.fetch`).
"""

from __future__ import annotations

import logging
import os
import tarfile
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from nord import safe_pickle
from nord.data_curators.download import (cache_dir, downloads_allowed, fetch,
                                         safe_extract_tar, sha256_of)
from nord.data_curators.fashion_mnist import sniff_format
from nord.data_curators.image_folders import (load_image_archive_split,
                                              load_image_tree_split)
from nord.errors import DamagedDataError, DataNotFoundError, SettingsError

__all__ = ["CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR10_URL",
           "CIFAR10_SHA256", "CIFAR10_JPEG_SHA256", "read_cifar10_batch",
           "load_cifar10_batches", "load_class_folders", "load_jpeg_archive",
           "extract_cifar10_jpeg",
           "find_cifar10", "load_cifar10"]

logger = logging.getLogger(__name__)

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                   "horse", "ship", "truck")
# Per-channel mean and standard deviation of the training images (scaled to 0..1).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
CIFAR10_JPEG_SHA256 = "e4a0fcd29188fde344a7950e4b9b9bd198f27595e9f96da1f0e54c930b498aa0"

SPLITS = ("train", "test")
_BATCH_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)),
                "test": ("test_batch",)}
_BATCHES_DIR = "cifar-10-batches-py"
_JPEG_DIR = "cifar10-jpeg"
_JPEG_ARCHIVE = "cifar10-jpeg.tar.gz"
_SIDE = 32
_PIXELS = 3 * _SIDE * _SIDE

# --- the official pickled batches -------------------------------------------------


def _corrupt(path: Path, why: str) -> DamagedDataError:
    return DamagedDataError(
        f"{path} is corrupt or truncated ({why}); it is not an official CIFAR-10 "
        f"batch. Delete the folder and download it again from {CIFAR10_URL}")


def read_cifar10_batch(path: os.PathLike) -> Tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64 of one batch file.

    Only read files you trust (see module docs).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataNotFoundError(f"{path} could not be read ({error}); get the "
                                f"official files from {CIFAR10_URL}") from error
    kind = sniff_format(raw)
    if kind:
        raise _corrupt(path, f"it is {kind}, not a pickled batch")
    try:
        # numpy arrays and plain values only (nord.safe_pickle): loading runs no code
        batch = safe_pickle.loads(raw, allow=safe_pickle.NUMPY_ARRAYS, encoding="bytes")
    except Exception as error:  # any unpickling failure means a damaged file
        raise _corrupt(path, f"not a readable pickle: {error}") from error
    if not isinstance(batch, dict):
        raise _corrupt(path, f"holds a {type(batch).__name__}, not a dict")
    batch = {key.decode() if isinstance(key, bytes) else key: value
             for key, value in batch.items()}
    missing = [key for key in ("data", "labels") if key not in batch]
    if missing:
        raise _corrupt(path, f"missing keys {missing}")
    data = batch["data"]
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != _PIXELS):
        shape = getattr(data, "shape", None)
        raise _corrupt(path, f"'data' must be a uint8 array of shape (N, {_PIXELS}), "
                             f"got {type(data).__name__} {shape}")
    try:
        labels = np.asarray(batch["labels"])
    except (TypeError, ValueError) as error:
        raise _corrupt(path, f"'labels' are not integers: {error}") from error
    if labels.size and labels.dtype.kind not in "iu":  # floats would be truncated silently
        raise _corrupt(path, f"'labels' are not integers (they are {labels.dtype})")
    labels = labels.astype(np.int64)
    if labels.shape != (data.shape[0],):
        raise _corrupt(path, f"{data.shape[0]} images but 'labels' has shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        item = int(np.flatnonzero((labels < 0) | (labels >= len(CIFAR10_CLASSES)))[0])
        raise _corrupt(path, f"labels outside 0..9 (label {labels[item]} of item {item})")
    return data.reshape(-1, 3, _SIDE, _SIDE), labels


def _has_batches(directory: Path, split: str) -> bool:
    return all((directory / name).is_file() for name in _BATCH_FILES[split])


def load_cifar10_batches(directory: os.PathLike, split: str = "train"
                         ) -> Tuple[np.ndarray, np.ndarray]:
    """One split (uint8 images, int64 labels) of a ``cifar-10-batches-py`` folder."""
    directory = Path(directory)
    parts = [read_cifar10_batch(directory / name) for name in _BATCH_FILES[_check_split(split)]]
    return (np.concatenate([images for images, _ in parts]),
            np.concatenate([labels for _, labels in parts]))


# --- class-folder images ----------------------------------------------------------

def load_class_folders(root: os.PathLike, split: str = "train",
                       cache: Optional[os.PathLike] = None
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """One split (uint8 ``(N, 3, 32, 32)``, int64 labels) of a class-folder tree.

    Decoded arrays are cached under ``cache/decoded`` (default
    ``cache_dir()/cifar10``) and reused while the tree is unchanged.
    """
    return load_image_tree_split(root, _check_split(split), CIFAR10_CLASSES,
                                 (_SIDE, _SIDE), _cache_root(cache))


def load_jpeg_archive(archive: os.PathLike, split: str = "train",
                      cache: Optional[os.PathLike] = None
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """One split of ``cifar10-jpeg.tar.gz``, decoded straight from the archive.

    Much faster than extracting 60,000 small files first; the decoded arrays are
    cached under ``cache/decoded`` and reused while the archive is unchanged.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise DataNotFoundError(f"the CIFAR-10 JPEG archive {archive} does not exist")
    return load_image_archive_split(archive, _check_split(split), CIFAR10_CLASSES,
                                    (_SIDE, _SIDE), _cache_root(cache))


# --- the JPEG archive --------------------------------------------------------------

def extract_cifar10_jpeg(archive: os.PathLike, cache: Optional[os.PathLike] = None,
                         splits: Sequence[str] = SPLITS) -> Path:
    """Extract the splits of ``cifar10-jpeg.tar.gz`` into the cache, once.

    Returns the extracted root (``cache/cifar10-jpeg``), which holds
    ``{train,test}/<class>/NNNN.jpg``. A ``.complete-<split>`` marker is written
    after a split is fully in place, so an interrupted extraction is redone.
    """
    archive = Path(archive)
    root = _cache_root(cache) / _JPEG_DIR
    needed = [split for split in map(_check_split, splits)
              if not (root / f".complete-{split}").is_file()]
    if not needed:
        return root
    if not archive.is_file():
        raise DataNotFoundError(f"the CIFAR-10 JPEG archive {archive} does not exist")
    if sha256_of(archive) != CIFAR10_JPEG_SHA256:
        logger.warning("%s is not the known cifar10-jpeg.tar.gz (SHA-256 differs); "
                       "extracting it anyway", archive)
    logger.info("extracting %s of %s into %s", "+".join(needed), archive, root)
    prefixes = tuple(f"{split}/" for split in needed)
    safe_extract_tar(archive, root, select=lambda name: name.lstrip("./").startswith(prefixes))
    for split in needed:
        if not (root / split).is_dir():
            raise DataNotFoundError(f"{archive} holds no {split}/ folder; it is not the "
                                    f"CIFAR-10 JPEG archive")
        (root / f".complete-{split}").write_text("complete\n")
    return root


# --- finding and loading -----------------------------------------------------------

def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise SettingsError(f"split must be 'train' or 'test', got {split!r}")
    return split


def _cache_root(cache: Optional[os.PathLike]) -> Path:
    return Path(cache) if cache is not None else cache_dir() / "cifar10"


def _detect(path: Path, split: str) -> Optional[Tuple[str, Path]]:
    """``('batches', folder)``, ``('folders', root)`` or ``('archive', file)``."""
    if path.is_file():
        return ("archive", path) if tarfile.is_tarfile(path) else None
    for folder in (path, path / _BATCHES_DIR):
        if _has_batches(folder, split):
            return "batches", folder
    if (path / split).is_dir() and any(entry.is_dir() for entry in (path / split).iterdir()):
        return "folders", path
    return None


def _jpeg_archives(archive: Optional[os.PathLike]) -> List[Path]:
    archives = [Path(archive)] if archive is not None else []
    if os.environ.get("NORD_DATA"):
        archives.append(Path(os.environ["NORD_DATA"]) / _JPEG_DIR / _JPEG_ARCHIVE)
    return archives


def find_cifar10(split: str = "train", root: Optional[os.PathLike] = None, *,
                 archive: Optional[os.PathLike] = None,
                 cache: Optional[os.PathLike] = None,
                 allow_download: Optional[bool] = None) -> Tuple[str, Path]:
    """Where one split is: ``('batches', folder)``, ``('folders', root)`` or
    ``('archive', tar file)``.

    See the module docs for the order of places searched. An explicit ``root`` is
    the only place looked at. The official tarball is downloaded into the cache
    and extracted there when allowed.
    """
    _check_split(split)
    if root is not None:
        found = _detect(Path(root), split)
        if found is None:
            raise DataNotFoundError(
                f"no CIFAR-10 {split} split in {root}: expected the official "
                f"{_BATCHES_DIR} files ({', '.join(_BATCH_FILES[split])}) or class "
                f"folders {root}/{split}/<class>/*.png|jpg, or a tar archive of such "
                f"folders")
        return found
    looked = []
    if os.environ.get("NORD_DATA"):
        candidate = Path(os.environ["NORD_DATA"]) / "cifar10"
        looked.append(str(candidate))
        found = _detect(candidate, split)
        if found is not None:
            return found
    for candidate in _jpeg_archives(archive):
        looked.append(str(candidate))
        if candidate.is_file():
            return "archive", candidate
    cached = _cache_root(cache)
    for candidate in (cached / _BATCHES_DIR, cached / _JPEG_DIR):
        looked.append(str(candidate))
        if candidate.name == _JPEG_DIR and not (candidate / f".complete-{split}").is_file():
            continue
        found = _detect(candidate, split)
        if found is not None:
            return found
    return "batches", _download_official(cached, looked, allow_download)


def _download_official(cached: Path, looked: List[str],
                       allow_download: Optional[bool]) -> Path:
    """Fetch and extract the official tarball into the cache (only when allowed)."""
    tarball = cached / "cifar-10-python.tar.gz"
    if not downloads_allowed(allow_download) and not tarball.is_file():
        raise DataNotFoundError(
            f"CIFAR-10 not found (looked in: {', '.join(looked)}). Either set "
            f"NORD_ALLOW_DOWNLOAD=1 (or pass allow_download=True) to download the "
            f"official {CIFAR10_URL} into {cached}; or put its {_BATCHES_DIR} folder "
            f"in $NORD_DATA/cifar10 or pass root=; or pass archive= the path of "
            f"{_JPEG_ARCHIVE} (class-folder JPEGs)")
    fetch(CIFAR10_URL, tarball, sha256=CIFAR10_SHA256, allow_download=allow_download,
          looked_in=looked)
    safe_extract_tar(tarball, cached,
                     select=lambda name: name.lstrip("./").startswith(_BATCHES_DIR))
    folder = cached / _BATCHES_DIR
    if not all(_has_batches(folder, split) for split in SPLITS):
        raise DataNotFoundError(f"{tarball} does not hold the {_BATCHES_DIR} files; "
                                f"delete it and download it again from {CIFAR10_URL}")
    return folder


def load_cifar10(split: str = "train", root: Optional[os.PathLike] = None,
                 normalize: bool = True, *, archive: Optional[os.PathLike] = None,
                 cache: Optional[os.PathLike] = None,
                 allow_download: Optional[bool] = None
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 3, 32, 32)`` float32 and labels ``(N,)`` int64 of one split.

    Pixels are scaled to 0..1 and, with ``normalize``, standardized with the
    per-channel :data:`CIFAR10_MEAN` and :data:`CIFAR10_STD`.

    Example::

        images, labels = load_cifar10(
            "test", archive="../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz")
    """
    kind, where = find_cifar10(split, root, archive=archive, cache=cache,
                               allow_download=allow_download)
    if kind == "batches":
        images, labels = load_cifar10_batches(where, split)
    elif kind == "archive":
        images, labels = load_jpeg_archive(where, split, cache=cache)
    else:
        images, labels = load_class_folders(where, split, cache=cache)
    tensor = torch.from_numpy(images).float().div_(255.0)
    if normalize:
        mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
        tensor = tensor.sub_(mean).div_(std)
    return tensor, torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))
