"""Fashion-MNIST IDX reading, root resolution and bad files."""

import gzip
import io
import struct
from pathlib import Path

import numpy as np
import pytest

from nord.data_curators.fashion_mnist import find_fashion_mnist, load_fashion_mnist, read_idx
from nord.errors import DamagedDataError, DataNotFoundError, NordError

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def write_idx(path, array):
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += b"".join(struct.pack(">I", n) for n in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.tobytes())


def fake_root(tmp_path, n_train=6, n_test=4):
    rng = np.random.default_rng(0)
    arrays = {}
    for images, labels, n in ((FILES[0], FILES[1], n_train), (FILES[2], FILES[3], n_test)):
        arrays[images] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[labels] = rng.integers(0, 10, (n,), dtype=np.uint8)
        write_idx(tmp_path / images, arrays[images])
        write_idx(tmp_path / labels, arrays[labels])
    return arrays


def test_reads_exact_values_from_an_explicit_root(tmp_path):
    arrays = fake_root(tmp_path)
    x, y = load_fashion_mnist("test", tmp_path, normalize=False)
    assert x.shape == (4, 1, 28, 28) and y.dtype.is_floating_point is False
    np.testing.assert_array_equal((x[:, 0] * 255).round().numpy().astype(np.uint8), arrays[FILES[2]])
    np.testing.assert_array_equal(y.numpy(), arrays[FILES[3]])


def test_nord_data_environment_variable(tmp_path, monkeypatch):
    (tmp_path / "fashion-mnist").mkdir()
    fake_root(tmp_path / "fashion-mnist")
    monkeypatch.setenv("NORD_DATA", str(tmp_path))
    assert find_fashion_mnist() == tmp_path / "fashion-mnist"


def test_missing_data_says_where_it_looked_and_how_to_get_it(tmp_path):
    with pytest.raises(DataNotFoundError) as error:
        find_fashion_mnist(tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message and "apt-get install dataset-fashion-mnist" in message
    assert "NORD_DATA" in message


def test_bad_magic_number_names_the_file(tmp_path):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(DataNotFoundError, match=r"bad\.gz is not an IDX file \(bad magic number\)"):
        read_idx(path)


def test_truncated_file_names_the_file(tmp_path):
    path = tmp_path / "short.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 100) + b"\x01" * 60)
    with pytest.raises(DataNotFoundError, match=r"short\.gz is truncated: header promises 100 bytes"):
        read_idx(path)


def test_corrupt_gzip_names_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataNotFoundError, match="train-images-idx3-ubyte.gz"):
        read_idx(path)


# ---------------------------------------------------------------- wrong files, found at load
def _image_bytes(fmt):
    from PIL import Image
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt, kind, gzipped", [("JPEG", "a JPEG image", False),
                                                ("JPEG", "a JPEG image", True),
                                                ("PNG", "a PNG image", False)])
def test_an_image_handed_as_the_labels_file_fails_at_load(tmp_path, fmt, kind, gzipped):
    fake_root(tmp_path)
    path = tmp_path / FILES[3]
    data = _image_bytes(fmt)
    path.write_bytes(gzip.compress(data) if gzipped else data)
    with pytest.raises(DamagedDataError) as error:
        load_fashion_mnist("test", tmp_path)
    assert str(error.value) == (
        f"{path} is {kind}, not an IDX file; expected a labels file (IDX, uint8, one "
        f"dimension): put the official file there")
    assert isinstance(error.value, DataNotFoundError) and isinstance(error.value, NordError)


def test_an_images_file_handed_as_the_labels_file_fails_at_load(tmp_path):
    # Same item count as the images, so only the shape gives it away.
    fake_root(tmp_path)
    (tmp_path / FILES[3]).write_bytes((tmp_path / FILES[2]).read_bytes())
    with pytest.raises(DamagedDataError) as error:
        load_fashion_mnist("test", tmp_path)
    assert str(error.value) == (
        f"{tmp_path / FILES[3]} holds an IDX array of shape (4, 28, 28) (uint8) (an images "
        f"file?), not labels; expected a labels file (IDX, uint8, one dimension): put the "
        f"official t10k-labels-idx1-ubyte.gz there")


def test_a_png_handed_as_the_images_file_fails_at_load(tmp_path):
    fake_root(tmp_path)
    (tmp_path / FILES[0]).write_bytes(_image_bytes("PNG"))
    with pytest.raises(DamagedDataError, match=r"train-images-idx3-ubyte\.gz is a PNG image, "
                                               r"not an IDX file; expected an images file"):
        load_fashion_mnist("train", tmp_path)


def test_labels_outside_the_classes_fail_at_load(tmp_path):
    arrays = fake_root(tmp_path)
    labels = arrays[FILES[3]].copy()
    labels[2] = 10
    write_idx(tmp_path / FILES[3], labels)
    with pytest.raises(DamagedDataError) as error:
        load_fashion_mnist("test", tmp_path)
    assert str(error.value) == (f"{tmp_path / FILES[3]}: label 10 of item 2 is outside 0..9 "
                                f"(10 classes); put the official t10k-labels-idx1-ubyte.gz "
                                f"there")


def test_label_and_image_counts_must_match(tmp_path):
    arrays = fake_root(tmp_path)
    write_idx(tmp_path / FILES[1], arrays[FILES[1]][:5])
    with pytest.raises(DamagedDataError) as error:
        load_fashion_mnist("train", tmp_path)
    assert str(error.value) == (
        f"{tmp_path / FILES[0]} holds 6 images but {tmp_path / FILES[1]} holds 5 labels; "
        f"one of them is cut short or from another set: re-download both")


def test_images_of_the_wrong_size_fail_at_load(tmp_path):
    fake_root(tmp_path)
    write_idx(tmp_path / FILES[2], np.zeros((4, 32, 32), dtype=np.uint8))
    with pytest.raises(DamagedDataError, match=r"holds an IDX array of shape \(4, 32, 32\) "
                                               r"\(uint8\); expected an images file \(IDX, "
                                               r"uint8, shape \(N, 28, 28\)\)"):
        load_fashion_mnist("test", tmp_path)


def test_a_cut_gzip_file_is_truncated(tmp_path):
    fake_root(tmp_path, n_test=400)
    path = tmp_path / FILES[2]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DamagedDataError, match=r"t10k-images-idx3-ubyte\.gz is truncated \(its "
                                               r"gzip stream ends early\)"):
        load_fashion_mnist("test", tmp_path)


def test_extra_bytes_after_the_data_are_refused(tmp_path):
    path = tmp_path / "long.idx"
    path.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + b"\x01" * 5)
    with pytest.raises(DamagedDataError, match=r"long\.idx holds 2 bytes after the 3 its "
                                               r"header promises"):
        read_idx(path)


def test_ungzipped_files_are_read_whatever_their_name(tmp_path):
    path = tmp_path / "plain.gz"
    path.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + b"\x07\x08\x09")
    np.testing.assert_array_equal(read_idx(path), [7, 8, 9])


def test_the_official_test_split_still_loads():
    root = Path("/usr/share/datasets/fashion-mnist")
    if not (root / FILES[3]).is_file():
        pytest.skip(f"Fashion-MNIST not installed in {root} "
                    f"(apt-get install dataset-fashion-mnist)")
    x, y = load_fashion_mnist("test", root, normalize=False)
    assert x.shape == (10000, 1, 28, 28)
    assert np.bincount(y.numpy()).tolist() == [1000] * 10


def test_a_search_on_a_damaged_labels_file_stops_before_a_run_exists(tmp_path, monkeypatch):
    """Caught when the search sets up (the data loads then), not after the budget has
    been spent failing candidates: no run store and no run folder are left."""
    from nord.execution.runs import SearchSettings, run_search
    root = tmp_path / "data" / "fashion-mnist"
    root.mkdir(parents=True)
    fake_root(root, n_train=40, n_test=10)
    (root / FILES[1]).write_bytes(_image_bytes("PNG"))
    monkeypatch.setenv("NORD_DATA", str(tmp_path / "data"))
    out = tmp_path / "run"
    settings = SearchSettings(space="remnet", budget=4, space_options={"channels": 4})
    with pytest.raises(DamagedDataError, match="is a PNG image, not an IDX file"):
        run_search(settings, out)
    assert not out.exists()
