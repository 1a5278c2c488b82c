"""Fashion-MNIST IDX reading, root resolution and bad files."""

import gzip
import struct

import numpy as np
import pytest

from nord.data_curators.fashion_mnist import find_fashion_mnist, load_fashion_mnist, read_idx
from nord.errors import DataNotFoundError

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
