"""Class-folder image data sets (``<split>/<class>/<image>``), decoded once and cached.

Images are read from a folder tree or straight out of a (compressed) tar archive
holding such a tree, decoded with Pillow to RGB, and returned as uint8 arrays
``(N, 3, H, W)`` with int64 labels (the index of the class name in the given
``classes`` tuple). Files are taken in a deterministic, numeric-aware order
(``2.png`` before ``10.png``).

Decoding tens of thousands of small images takes seconds, so the arrays are
cached as ``.npy`` files next to a JSON manifest describing their source (file
count, names, sizes and modification times of a tree; path, size and
modification time of an archive). A cache whose manifest no longer matches the
source is rebuilt; a cache that cannot be written only costs speed.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tarfile
from pathlib import Path
from typing import List, Sequence, Tuple, Union

import numpy as np

from nord.data_curators.download import check_member_name
from nord.errors import DataNotFoundError

__all__ = ["IMAGE_SUFFIXES", "natural_key", "list_class_folder_images",
           "load_image_tree_split", "load_image_archive_split"]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
_MANIFEST_VERSION = 1
ImageSource = Union[Path, io.BytesIO]


def natural_key(name: str):
    """Sort key that orders ``2.png`` before ``10.png``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", name)]


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _check_classes(where, names: Sequence[str], classes: Sequence[str]) -> None:
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise DataNotFoundError(f"{where} holds class folders {unknown} that are not "
                                f"known classes (expected some of {list(classes)})")


def list_class_folder_images(split_dir: Path, classes: Sequence[str]
                             ) -> Tuple[List[str], np.ndarray]:
    """``<class>/<file>`` names of every image in deterministic order, and labels."""
    with os.scandir(split_dir) as entries:
        folders = sorted((entry.name for entry in entries if entry.is_dir()),
                         key=natural_key)
    _check_classes(split_dir, folders, classes)
    relative, labels = [], []
    for folder in folders:
        with os.scandir(split_dir / folder) as entries:
            files = sorted((entry.name for entry in entries
                            if entry.is_file() and _is_image(entry.name)), key=natural_key)
        relative.extend(f"{folder}/{name}" for name in files)
        labels.extend([classes.index(folder)] * len(files))
    if not relative:
        raise DataNotFoundError(f"{split_dir} holds no .png/.jpg images in class folders")
    return relative, np.asarray(labels, dtype=np.int64)


def _decode_image(source: ImageSource, name: str, size: Tuple[int, int]) -> np.ndarray:
    """One image (a path or in-memory bytes) as an RGB uint8 array ``(H, W, 3)``."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(source) as image:
            found = image.size
            pixels = np.asarray(image.convert("RGB")) if found == size else None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataNotFoundError(f"{name} is not a readable image ({error}); replace "
                                f"it or get the data again") from error
    if pixels is None:
        raise DataNotFoundError(f"{name} is {found[0]}x{found[1]} pixels; images of this "
                                f"data set must be {size[0]}x{size[1]}")
    return pixels


def _decode_all(sources: Sequence[ImageSource], names: Sequence[str],
                size: Tuple[int, int]) -> np.ndarray:
    """Decode images into one ``(N, 3, H, W)`` uint8 array."""
    out = np.empty((len(sources), size[1], size[0], 3), dtype=np.uint8)
    for index, (source, name) in enumerate(zip(sources, names)):
        out[index] = _decode_image(source, name, size)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _tree_manifest(split_dir: Path, relative: Sequence[str]) -> dict:
    """What decoded arrays of a tree were made from; any change invalidates them."""
    digest = hashlib.sha256()
    newest = 0
    base = str(split_dir)
    for name in relative:
        stat = os.stat(os.path.join(base, name))
        newest = max(newest, stat.st_mtime_ns)
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return {"version": _MANIFEST_VERSION, "source": base, "files": len(relative),
            "newest_mtime_ns": newest, "fingerprint": digest.hexdigest()}


def _read_cached(folder: Path, manifest: dict, size: Tuple[int, int], classes: int):
    """The cached ``(images, labels)`` if ``folder`` holds them for ``manifest``.

    Arrays of another image size, or labels outside ``0..classes-1``, are not
    trusted (the data are decoded again).
    """
    try:
        if json.loads((folder / "manifest.json").read_text()) != manifest:
            return None
        images = np.load(folder / "images.npy", allow_pickle=False)
        labels = np.load(folder / "labels.npy", allow_pickle=False)
    except (OSError, ValueError):
        return None
    count = manifest.get("files")
    if images.dtype != np.uint8 or images.shape[1:] != (3, size[1], size[0]) \
            or labels.dtype != np.int64 or labels.shape != (len(images),) \
            or (count is not None and count != len(images)):
        logger.warning("the decoded images cached in %s do not match their manifest; "
                       "decoding them again", folder)
        return None
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        logger.warning("the decoded labels cached in %s lie outside 0..%d; decoding the "
                       "images again", folder, classes - 1)
        return None
    return images, labels


def _write_cached(folder: Path, manifest: dict, images: np.ndarray,
                  labels: np.ndarray) -> None:
    """Write arrays, then the manifest last, so a partial write is never trusted."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "manifest.json").unlink(missing_ok=True)
        for name, array in (("images", images), ("labels", labels)):
            temporary = folder / f".{name}.tmp.npy"
            np.save(temporary, array, allow_pickle=False)
            os.replace(temporary, folder / f"{name}.npy")
        temporary = folder / ".manifest.tmp"
        temporary.write_text(json.dumps(manifest, indent=1))
        os.replace(temporary, folder / "manifest.json")
    except OSError as error:
        logger.warning("could not cache decoded images in %s: %s", folder, error)


def _cache_folder(cache: Path, kind: str, source: Path, split: str) -> Path:
    key = hashlib.sha256(str(source).encode()).hexdigest()[:16]
    return cache / "decoded" / f"{kind}-{split}-{key}"


def load_image_tree_split(root: os.PathLike, split: str, classes: Sequence[str],
                          size: Tuple[int, int], cache: os.PathLike
                          ) -> Tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, H, W)`` uint8 and labels of ``root/<split>/<class>/*``.

    ``size`` is ``(width, height)``; other sizes are an error. Decoded arrays are
    cached under ``cache/decoded`` while the tree is unchanged.
    """
    split_dir = (Path(root) / split).resolve()
    relative, labels = list_class_folder_images(split_dir, classes)
    manifest = _tree_manifest(split_dir, relative)
    folder = _cache_folder(Path(cache), "tree", split_dir, split)
    cached = _read_cached(folder, manifest, size, len(classes))
    if cached is not None:
        logger.debug("using decoded images cached in %s", folder)
        return cached
    logger.info("decoding %d images from %s", len(relative), split_dir)
    images = _decode_all([split_dir / name for name in relative],
                         [str(split_dir / name) for name in relative], size)
    _write_cached(folder, manifest, images, labels)
    return images, labels


def _read_archive_split(archive: Path, split: str, classes: Sequence[str]):
    """``(names, labels, bytes)`` of the split's images in an archive, sorted."""
    found = []
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                check_member_name(member.name, archive)
                parts = member.name.lstrip("./").split("/")
                if not member.isfile() or len(parts) != 3 or parts[0] != split \
                        or not _is_image(parts[2]):
                    continue
                _check_classes(f"{archive} ({split}/)", [parts[1]], classes)
                found.append((parts[1], parts[2], tar.extractfile(member).read()))
    except (tarfile.TarError, EOFError, OSError) as error:
        if isinstance(error, DataNotFoundError):
            raise
        raise DataNotFoundError(f"{archive} could not be read ({error}); it is damaged "
                                f"or truncated: get it again") from error
    if not found:
        raise DataNotFoundError(f"{archive} holds no {split}/<class>/<image> files")
    found.sort(key=lambda item: (natural_key(item[0]), natural_key(item[1])))
    names = [f"{archive}:{split}/{folder}/{name}" for folder, name, _ in found]
    labels = np.asarray([classes.index(folder) for folder, _, _ in found], dtype=np.int64)
    return names, labels, [data for _, _, data in found]


def load_image_archive_split(archive: os.PathLike, split: str, classes: Sequence[str],
                             size: Tuple[int, int], cache: os.PathLike
                             ) -> Tuple[np.ndarray, np.ndarray]:
    """Like :func:`load_image_tree_split`, read straight from a tar archive.

    Nothing is extracted to disk; member names are still checked
    (:func:`~nord.data_curators.download.check_member_name`). The cache is
    rebuilt when the archive's path, size or modification time change.
    """
    archive = Path(archive).resolve()
    stat = archive.stat()
    manifest = {"version": _MANIFEST_VERSION, "source": str(archive), "split": split,
                "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    folder = _cache_folder(Path(cache), "archive", archive, split)
    cached = _read_cached(folder, manifest, size, len(classes))
    if cached is not None:
        logger.debug("using decoded images cached in %s", folder)
        return cached
    logger.info("decoding the %s images of %s", split, archive)
    names, labels, blobs = _read_archive_split(archive, split, classes)
    images = _decode_all([io.BytesIO(blob) for blob in blobs], names, size)
    _write_cached(folder, manifest, images, labels)
    return images, labels
