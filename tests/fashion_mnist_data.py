"""Whether the real Fashion-MNIST files are installed, and a marker for tests that need them."""

import pytest

from nord.data_curators import find_fashion_mnist
from nord.errors import DataNotFoundError


def fashion_mnist_available() -> bool:
    try:
        find_fashion_mnist()
        return True
    except DataNotFoundError:
        return False


needs_fashion_mnist = pytest.mark.skipif(
    not fashion_mnist_available(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
