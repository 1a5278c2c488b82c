"""Data curators: dataset readers that return in-memory tensors, and augmentation.

Names are loaded on first use, so importing one curator module does not load the others.
"""

from typing import TYPE_CHECKING

from nord import lazy_exports

__all__ = [
    "ACTIVITY_RECOGNITION_CLASSES", "find_activity_recognition", "load_activity_recognition",
    "FASHION_MNIST_AUGMENTATION", "Augmentation", "random_erasing", "random_horizontal_flip",
    "CIFAR10_CLASSES", "extract_cifar10_jpeg", "find_cifar10", "load_cifar10",
    "cache_dir", "fetch",
    "FASHION_MNIST_CLASSES", "find_fashion_mnist", "load_fashion_mnist", "read_idx",
    "DatasetSplits", "TensorData", "make_splits",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    ".activity_recognition": ["ACTIVITY_RECOGNITION_CLASSES", "find_activity_recognition",
                              "load_activity_recognition"],
    ".augmentation": ["FASHION_MNIST_AUGMENTATION", "Augmentation", "random_erasing",
                      "random_horizontal_flip"],
    ".cifar10": ["CIFAR10_CLASSES", "extract_cifar10_jpeg", "find_cifar10", "load_cifar10"],
    ".download": ["cache_dir", "fetch"],
    ".fashion_mnist": ["FASHION_MNIST_CLASSES", "find_fashion_mnist", "load_fashion_mnist",
                       "read_idx"],
    ".splits": ["DatasetSplits", "TensorData", "make_splits"],
})

if TYPE_CHECKING:
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
    from nord.data_curators.splits import DatasetSplits, TensorData, make_splits
