"""Data curators: dataset readers that return in-memory tensors, and augmentation."""

from nord.data_curators.activity_recognition import (
    ACTIVITY_RECOGNITION_CLASSES,
    find_activity_recognition,
    load_activity_recognition,
)
from nord.data_curators.augmentation import (
    FASHION_MNIST_AUGMENTATION,
    Augmentation,
    random_erasing,
    random_horizontal_flip,
)
from nord.data_curators.cifar10 import (
    CIFAR10_CLASSES,
    extract_cifar10_jpeg,
    find_cifar10,
    load_cifar10,
)
from nord.data_curators.download import cache_dir, fetch
from nord.data_curators.fashion_mnist import (
    FASHION_MNIST_CLASSES,
    find_fashion_mnist,
    load_fashion_mnist,
    read_idx,
)

__all__ = [
    "ACTIVITY_RECOGNITION_CLASSES", "find_activity_recognition", "load_activity_recognition",
    "FASHION_MNIST_AUGMENTATION", "Augmentation", "random_erasing", "random_horizontal_flip",
    "CIFAR10_CLASSES", "extract_cifar10_jpeg", "find_cifar10", "load_cifar10",
    "cache_dir", "fetch",
    "FASHION_MNIST_CLASSES", "find_fashion_mnist", "load_fashion_mnist", "read_idx",
]
