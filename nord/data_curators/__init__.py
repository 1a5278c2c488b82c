"""Data curators: dataset readers that return in-memory tensors."""

from nord.data_curators.fashion_mnist import (
    FASHION_MNIST_CLASSES,
    find_fashion_mnist,
    load_fashion_mnist,
    read_idx,
)

__all__ = ["FASHION_MNIST_CLASSES", "find_fashion_mnist", "load_fashion_mnist", "read_idx"]
