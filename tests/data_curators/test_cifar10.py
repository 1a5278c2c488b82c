"""CIFAR-10 readers on tiny generated data (and once on the real JPEG archive)."""

import hashlib
import io
import os
import pickle
import re
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nord.data_curators.cifar10 as cifar10
import nord.data_curators.image_folders as image_folders
from nord.data_curators.cifar10 import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    extract_cifar10_jpeg,
    load_cifar10,
    load_class_folders,
    read_cifar10_batch,
)
from nord.errors import DamagedDataError, DataNotFoundError

PER_BATCH = 20
SHARED_ARCHIVE = (Path(__file__).resolve().parents[2].parent
                  / "shared" / "data" / "cifar10-jpeg" / "cifar10-jpeg.tar.gz")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    for name in ("NORD_ALLOW_DOWNLOAD", "NORD_DATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NORD_CACHE", str(tmp_path / "user-cache"))


# --- the official pickled batches -------------------------------------------------

def _batch(seed, n=PER_BATCH):
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"fake batch", b"labels": rng.integers(0, 10, n).tolist(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [b"img_%d.png" % i for i in range(n)]}


def _write_batch(path, batch):
    # Protocol 2 with numpy's old module path, as the official Python 2 files are.
    raw = pickle.dumps(batch, protocol=2).replace(b"numpy._core.multiarray",
                                                  b"numpy.core.multiarray")
    path.write_bytes(raw)


@pytest.fixture
def batches_dir(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = {f"data_batch_{i}": _batch(i) for i in range(1, 6)}
    batches["test_batch"] = _batch(99)
    for name, batch in batches.items():
        _write_batch(folder / name, batch)
    return folder, batches


def test_classes_sorted_alphabetically_are_the_official_order():
    assert CIFAR10_CLASSES == ("airplane", "automobile", "bird", "cat", "deer", "dog",
                               "frog", "horse", "ship", "truck")
    assert tuple(sorted(CIFAR10_CLASSES)) == CIFAR10_CLASSES


def test_reads_the_official_batches_exactly(batches_dir):
    folder, batches = batches_dir
    images, labels = load_cifar10("train", root=folder, normalize=False)
    expected = np.concatenate([batches[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
    assert images.shape == (5 * PER_BATCH, 3, 32, 32) and images.dtype == torch.float32
    assert labels.dtype == torch.int64
    assert torch.equal((images * 255).round().to(torch.uint8),
                       torch.from_numpy(expected.reshape(-1, 3, 32, 32)))
    assert labels.tolist() == sum((batches[f"data_batch_{i}"][b"labels"]
                                   for i in range(1, 6)), [])
    # Channel-major rows: the first 1024 values of a row are the red plane.
    assert images[0, 0, 0, 1].item() * 255 == pytest.approx(expected[0, 1])
    assert images[0, 1, 0, 0].item() * 255 == pytest.approx(expected[0, 1024])


def test_test_split_and_normalization(batches_dir):
    folder, batches = batches_dir
    images, labels = load_cifar10("test", root=folder.parent)  # parent holds the folder
    raw = torch.from_numpy(batches["test_batch"][b"data"].reshape(-1, 3, 32, 32)).float() / 255
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    assert torch.allclose(images, (raw - mean) / std, atol=1e-6)
    assert labels.tolist() == batches["test_batch"][b"labels"]


def test_batches_are_found_through_nord_data(batches_dir, monkeypatch, tmp_path):
    folder, batches = batches_dir
    data = tmp_path / "data"
    data.mkdir()
    folder.rename(data / "cifar10")
    monkeypatch.setenv("NORD_DATA", str(data))
    _, labels = load_cifar10("test")
    assert labels.tolist() == batches["test_batch"][b"labels"]


def test_modern_pickles_load_too(tmp_path):
    batch = _batch(5)
    for protocol in (4, 5):
        path = tmp_path / f"batch{protocol}"
        path.write_bytes(pickle.dumps({k.decode(): v for k, v in batch.items()},
                                      protocol=protocol))
        images, labels = read_cifar10_batch(path)
        assert np.array_equal(images, batch[b"data"].reshape(-1, 3, 32, 32))
        assert labels.tolist() == batch[b"labels"]


def _png_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("damage,why", [
    (lambda raw, batch: b"\x00garbage, not a pickle" * 20, "not a readable pickle"),
    (lambda raw, batch: raw[: len(raw) // 2], "not a readable pickle"),
    (lambda raw, batch: pickle.dumps({**batch, b"data": batch[b"data"][:, :3000]}, 2),
     r"shape \(N, 3072\)"),
    (lambda raw, batch: pickle.dumps({k: v for k, v in batch.items() if k != b"labels"}, 2),
     r"missing keys \['labels'\]"),
    (lambda raw, batch: pickle.dumps({**batch, b"labels": batch[b"labels"][:-1]}, 2),
     "20 images but 'labels' has shape"),
    (lambda raw, batch: pickle.dumps({**batch, b"labels": [10] * PER_BATCH}, 2),
     r"labels outside 0..9 \(label 10 of item 0\)"),
    (lambda raw, batch: pickle.dumps({**batch, b"labels": [1.5] * PER_BATCH}, 2),
     r"'labels' are not integers \(they are float64\)"),
    (lambda raw, batch: _png_bytes(), r"\(it is a PNG image, not a pickled batch\)"),
    (lambda raw, batch: pickle.dumps([1, 2, 3], 2), "holds a list, not a dict"),
])
def test_damaged_batches_name_the_file(batches_dir, damage, why):
    folder, batches = batches_dir
    path = folder / "data_batch_3"
    path.write_bytes(damage(path.read_bytes(), batches["data_batch_3"]))
    with pytest.raises(DamagedDataError) as caught:
        load_cifar10("train", root=folder)
    message = str(caught.value)
    assert str(path) in message and "corrupt or truncated" in message
    assert "download it again" in message
    assert re.search(why, message)


class _Exploit:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (str(self.target),))


def test_pickles_that_run_code_are_refused(batches_dir, tmp_path):
    folder, _ = batches_dir
    target = tmp_path / "exploited"
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": _Exploit(target)}, 2))
    with pytest.raises(DataNotFoundError, match="refusing to load posix.mkdir"):
        load_cifar10("test", root=folder)
    assert not target.exists()


# --- class-folder trees -----------------------------------------------------------

def _pixels(seed, size=(32, 32)):
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def _tree(root, files):
    """``files``: {relative path: HxWx3 uint8 array}; the format follows the suffix."""
    for relative, array in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path, quality=95)
    return root


@pytest.fixture
def png_tree(tmp_path):
    files = {"train/cat/2.png": _pixels(1), "train/cat/10.png": _pixels(2),
             "train/cat/1.png": _pixels(3), "train/airplane/7.png": _pixels(4),
             "train/truck/0.png": _pixels(5), "test/ship/0.png": _pixels(6)}
    return _tree(tmp_path / "tree", files), files


def test_png_tree_is_read_exactly_in_numeric_order(png_tree):
    root, files = png_tree
    images, labels = load_cifar10("train", root=root, normalize=False)
    order = ["train/airplane/7.png", "train/cat/1.png", "train/cat/2.png",
             "train/cat/10.png", "train/truck/0.png"]
    expected = np.stack([files[name] for name in order]).transpose(0, 3, 1, 2)
    assert labels.tolist() == [0, 3, 3, 3, 9]
    assert torch.equal((images * 255).round().to(torch.uint8), torch.from_numpy(expected))
    test_images, test_labels = load_cifar10("test", root=root, normalize=False)
    assert test_labels.tolist() == [8] and test_images.shape == (1, 3, 32, 32)


def test_jpeg_and_grayscale_images_become_rgb(tmp_path):
    smooth = np.broadcast_to(np.arange(32, dtype=np.uint8)[None, :, None] * 8,
                             (32, 32, 3)).copy()
    root = _tree(tmp_path / "tree", {"train/dog/0.jpg": smooth, "train/dog/1.JPEG": smooth})
    gray = root / "train" / "frog" / "0.png"
    gray.parent.mkdir()
    Image.fromarray(np.full((32, 32), 77, dtype=np.uint8), mode="L").save(gray)
    images, labels = load_class_folders(root, "train", cache=tmp_path / "cache")
    assert labels.tolist() == [5, 5, 6]
    assert np.abs(images[:2].astype(int) - smooth.transpose(2, 0, 1)[None]).mean() < 3
    assert (images[2] == 77).all()


def test_wrong_image_size_is_a_clear_error(tmp_path):
    root = _tree(tmp_path / "tree", {"train/cat/0.png": _pixels(1, size=(33, 32))})
    with pytest.raises(DataNotFoundError, match=r"0.png is 33x32 pixels; images of this "
                                                r"data set must be 32x32"):
        load_cifar10("train", root=root)


def test_unreadable_image_and_unknown_class_are_clear_errors(tmp_path):
    root = _tree(tmp_path / "tree", {"train/cat/0.png": _pixels(1)})
    (root / "train" / "cat" / "1.png").write_bytes(b"not an image")
    with pytest.raises(DataNotFoundError, match=r"cat/1.png is not a readable image"):
        load_cifar10("train", root=root)
    (root / "train" / "cat" / "1.png").unlink()
    (root / "train" / "cats").mkdir()
    with pytest.raises(DataNotFoundError, match=r"folders \['cats'\] that are not known"):
        load_cifar10("train", root=root)


def test_decoded_images_are_cached_and_invalidated(png_tree, tmp_path, monkeypatch):
    root, files = png_tree
    cache = tmp_path / "cache"
    first = load_class_folders(root, "train", cache=cache)
    decoded = list((cache / "decoded").iterdir())
    assert len(decoded) == 1
    assert sorted(p.name for p in decoded[0].iterdir()) == ["images.npy", "labels.npy",
                                                            "manifest.json"]

    def refuse(source, name, size):
        raise AssertionError(f"decoded {name} although the cache is valid")

    real_decoder = image_folders._decode_image
    monkeypatch.setattr(image_folders, "_decode_image", refuse)
    second = load_class_folders(root, "train", cache=cache)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])

    (root / "train" / "dog").mkdir()
    Image.fromarray(_pixels(7)).save(root / "train" / "dog" / "0.png")
    with pytest.raises(AssertionError, match="decoded"):
        load_class_folders(root, "train", cache=cache)

    calls = []
    monkeypatch.setattr(image_folders, "_decode_image",
                        lambda *args: calls.append(args[1]) or real_decoder(*args))
    images, labels = load_class_folders(root, "train", cache=cache)
    assert len(calls) == 6 and labels.tolist() == [0, 3, 3, 3, 5, 9]
    assert np.array_equal(images[4], _pixels(7).transpose(2, 0, 1))
    # Rewriting a file in place (same name) also invalidates the cache.
    calls.clear()
    Image.fromarray(_pixels(8)).save(root / "train" / "truck" / "0.png")
    os.utime(root / "train" / "truck" / "0.png", ns=(1, 1))
    images, _ = load_class_folders(root, "train", cache=cache)
    assert len(calls) == 6 and np.array_equal(images[5], _pixels(8).transpose(2, 0, 1))
    calls.clear()
    load_class_folders(root, "train", cache=cache)
    assert calls == []


def test_a_damaged_cache_is_rebuilt(png_tree, tmp_path):
    root, _ = png_tree
    cache = tmp_path / "cache"
    first, _ = load_class_folders(root, "train", cache=cache)
    (folder,) = (cache / "decoded").iterdir()
    (folder / "images.npy").write_bytes(b"truncated")
    again, _ = load_class_folders(root, "train", cache=cache)
    assert np.array_equal(first, again)


# --- the JPEG archive -------------------------------------------------------------

def _jpeg_archive(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, array in members.items():
            buffer = io.BytesIO()
            Image.fromarray(array).save(buffer, format="PNG")  # lossless for exact checks
            info = tarfile.TarInfo(name)
            info.size = buffer.tell()
            buffer.seek(0)
            tar.addfile(info, buffer)
    return path


@pytest.fixture
def fake_archive(tmp_path):
    members = {"train/bird/0000.png": _pixels(11), "train/horse/0000.png": _pixels(12),
               "train/horse/0001.png": _pixels(13), "test/deer/0000.png": _pixels(14)}
    return _jpeg_archive(tmp_path / "cifar10-jpeg.tar.gz", members), members


def test_archive_is_extracted_once_per_split(fake_archive, tmp_path):
    archive, _ = fake_archive
    cache = tmp_path / "cache"
    root = extract_cifar10_jpeg(archive, cache, splits=("test",))
    assert root == cache / "cifar10-jpeg"
    assert sorted(p.name for p in root.iterdir()) == [".complete-test", "test"]
    root = extract_cifar10_jpeg(archive, cache)
    assert sorted(p.name for p in root.iterdir()) == [".complete-test", ".complete-train",
                                                      "test", "train"]
    moved = archive.rename(tmp_path / "moved.tar.gz")
    assert extract_cifar10_jpeg(archive, cache) == root  # complete: archive not needed
    # An interrupted extraction (no marker) is redone, replacing what was there.
    (root / ".complete-train").unlink()
    (root / "train" / "horse" / "0001.png").unlink()
    with pytest.raises(DataNotFoundError, match="does not exist"):
        extract_cifar10_jpeg(archive, cache)
    extract_cifar10_jpeg(moved, cache)
    assert (root / "train" / "horse" / "0001.png").is_file()


def test_unsafe_archive_is_rejected_without_markers(tmp_path):
    archive = _jpeg_archive(tmp_path / "evil.tar.gz", {"test/cat/0.png": _pixels(1),
                                                       "../test/escaped.png": _pixels(2)})
    cache = tmp_path / "cache"
    with pytest.raises(DataNotFoundError, match=r"unsafe member '../test/escaped.png'"):
        extract_cifar10_jpeg(archive, cache)
    assert sorted(p.name for p in (cache / "cifar10-jpeg").iterdir()) == []
    assert not (cache / "test").exists()


def test_archive_is_decoded_directly_and_cached(fake_archive, tmp_path, monkeypatch):
    archive, members = fake_archive
    images, labels = load_cifar10("train", normalize=False, archive=archive)
    assert labels.tolist() == [2, 7, 7]
    expected = np.stack([members[n] for n in ("train/bird/0000.png", "train/horse/0000.png",
                                              "train/horse/0001.png")])
    assert torch.equal((images * 255).round().to(torch.uint8),
                       torch.from_numpy(expected.transpose(0, 3, 1, 2)))
    cache = tmp_path / "user-cache" / "cifar10"
    assert sorted(p.name for p in cache.iterdir()) == ["decoded"]  # nothing extracted
    real_decoder = image_folders._decode_image
    monkeypatch.setattr(image_folders, "_decode_image", lambda *args: 1 / 0)
    again, again_labels = load_cifar10("train", normalize=False, root=archive)
    assert torch.equal(again, images) and again_labels.tolist() == [2, 7, 7]
    # A changed archive (here: new modification time) is decoded again.
    os.utime(archive, ns=(10**9, 10**9))
    with pytest.raises(ZeroDivisionError):
        load_cifar10("train", archive=archive)
    monkeypatch.setattr(image_folders, "_decode_image", real_decoder)
    assert load_cifar10("train", archive=archive)[1].tolist() == [2, 7, 7]


def test_archive_problems_are_clear_errors(tmp_path):
    odd = _jpeg_archive(tmp_path / "odd.tar.gz", {"test/cats/0.png": _pixels(1)})
    with pytest.raises(DataNotFoundError, match=r"folders \['cats'\] that are not known"):
        load_cifar10("test", archive=odd)
    evil = _jpeg_archive(tmp_path / "evil.tar.gz", {"../test/cat/0.png": _pixels(1)})
    with pytest.raises(DataNotFoundError, match="unsafe member"):
        load_cifar10("test", archive=evil)
    empty = _jpeg_archive(tmp_path / "empty.tar.gz", {"train/cat/0.png": _pixels(1)})
    with pytest.raises(DataNotFoundError, match=r"holds no test/<class>/<image> files"):
        load_cifar10("test", archive=empty)
    whole = _jpeg_archive(tmp_path / "whole.tar.gz",
                          {f"test/cat/{i}.png": _pixels(i) for i in range(4)})
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DataNotFoundError, match="damaged or truncated"):
        load_cifar10("test", archive=truncated)


def test_an_extracted_archive_in_the_cache_is_found(fake_archive, monkeypatch):
    archive, _ = fake_archive
    extract_cifar10_jpeg(archive)  # into the user cache
    archive.unlink()
    _, labels = load_cifar10("train", normalize=False)
    assert labels.tolist() == [2, 7, 7]


def test_archive_under_nord_data_is_used(fake_archive, tmp_path, monkeypatch):
    archive, _ = fake_archive
    data = tmp_path / "data"
    (data / "cifar10-jpeg").mkdir(parents=True)
    archive.rename(data / "cifar10-jpeg" / "cifar10-jpeg.tar.gz")
    monkeypatch.setenv("NORD_DATA", str(data))
    _, labels = load_cifar10("test")
    assert labels.tolist() == [4]


def test_missing_data_lists_every_place_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NORD_DATA", str(tmp_path / "data"))
    with pytest.raises(DataNotFoundError) as caught:
        load_cifar10("train", archive=tmp_path / "nowhere.tar.gz")
    message = str(caught.value)
    for needed in (str(tmp_path / "data" / "cifar10"), str(tmp_path / "nowhere.tar.gz"),
                   str(tmp_path / "data" / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"),
                   str(tmp_path / "user-cache" / "cifar10" / "cifar-10-batches-py"),
                   "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                   "NORD_ALLOW_DOWNLOAD=1", "allow_download=True", "root="):
        assert needed in message
    with pytest.raises(DataNotFoundError, match="no CIFAR-10 test split in"):
        load_cifar10("test", root=tmp_path)
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_cifar10("valid", root=tmp_path)


def test_official_tarball_is_downloaded_when_allowed(batches_dir, tmp_path, monkeypatch):
    folder, batches = batches_dir
    tarball = tmp_path / "server" / "cifar-10-python.tar.gz"
    tarball.parent.mkdir()
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    monkeypatch.setattr(cifar10, "CIFAR10_URL", tarball.as_uri())
    monkeypatch.setattr(cifar10, "CIFAR10_SHA256",
                        hashlib.sha256(tarball.read_bytes()).hexdigest())
    _, labels = load_cifar10("test", allow_download=True)
    assert labels.tolist() == batches["test_batch"][b"labels"]
    cached = tmp_path / "user-cache" / "cifar10"
    assert sorted(p.name for p in cached.iterdir()) == ["cifar-10-batches-py",
                                                        "cifar-10-python.tar.gz"]
    _, labels = load_cifar10("train")  # now found in the cache, no download needed
    assert len(labels) == 5 * PER_BATCH


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_ARCHIVE.is_file(),
                    reason=f"the shared CIFAR-10 JPEG archive is not at {SHARED_ARCHIVE}")
def test_real_jpeg_archive_test_split(tmp_path):
    cache = tmp_path / "cache"
    start = time.perf_counter()
    images, labels = load_cifar10("test", archive=SHARED_ARCHIVE, cache=cache)
    cold = time.perf_counter() - start
    assert images.shape == (10000, 3, 32, 32) and images.dtype == torch.float32
    assert torch.bincount(labels, minlength=10).tolist() == [1000] * 10
    assert labels[:1000].eq(0).all() and labels[-1000:].eq(9).all()
    # Normalized with the official statistics, the JPEG copy is close to zero mean.
    assert images.mean(dim=(0, 2, 3)).abs().max() < 0.1
    with tarfile.open(SHARED_ARCHIVE) as tar:
        member = next(m for m in tar if m.name == "test/airplane/0000.jpg")
        with Image.open(io.BytesIO(tar.extractfile(member).read())) as jpeg:
            first = np.array(jpeg)
    raw = (images[0] * torch.tensor(CIFAR10_STD).view(3, 1, 1)
           + torch.tensor(CIFAR10_MEAN).view(3, 1, 1)) * 255
    assert torch.equal(raw.round().to(torch.uint8), torch.from_numpy(first).permute(2, 0, 1))
    assert not (cache / "cifar10-jpeg").exists()  # decoded without extracting
    start = time.perf_counter()
    again, again_labels = load_cifar10("test", archive=SHARED_ARCHIVE, cache=cache)
    warm = time.perf_counter() - start
    assert torch.equal(again, images) and torch.equal(again_labels, labels)
    assert warm < cold


def test_a_cache_with_labels_out_of_range_or_wrong_sizes_is_rebuilt(png_tree, tmp_path, caplog):
    root, _ = png_tree
    cache = tmp_path / "cache"
    first, labels = load_class_folders(root, "train", cache=cache)
    (folder,) = (cache / "decoded").iterdir()
    np.save(folder / "labels.npy", np.full_like(labels, 99))
    with caplog.at_level("WARNING", logger="nord.data_curators.image_folders"):
        images, again = load_class_folders(root, "train", cache=cache)
    assert again.tolist() == labels.tolist() and np.array_equal(images, first)
    assert f"the decoded labels cached in {folder} lie outside 0..9" in caplog.text
    np.save(folder / "images.npy", np.zeros((len(labels), 3, 16, 16), dtype=np.uint8))
    images, _ = load_class_folders(root, "train", cache=cache)
    assert np.array_equal(images, first)
