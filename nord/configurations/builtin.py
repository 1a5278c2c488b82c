"""The built-in datasets of thesis table 3.1 (graph datasets come with chapter 7)."""

from __future__ import annotations

from typing import Optional

from nord.data_curators.splits import DatasetSplits, make_splits

__all__ = ["register_builtin_datasets", "fashion_mnist_data", "cifar10_data",
           "activity_recognition_data"]


def fashion_mnist_data(percentage: float = 1.0, *, root: Optional[str] = None,
                       validation_fraction: float = 0.1, split_seed: int = 0) -> DatasetSplits:
    """Fashion-MNIST splits: 54,000 / 6,000 validation / 10,000 test at full share."""
    from nord.data_curators.augmentation import FASHION_MNIST_AUGMENTATION
    from nord.data_curators.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
    train_x, train_y = load_fashion_mnist("train", root)
    test_x, test_y = load_fashion_mnist("test", root)
    return make_splits(train_x, train_y, test_x, test_y, percentage=percentage,
                       validation_fraction=validation_fraction, split_seed=split_seed,
                       classes=FASHION_MNIST_CLASSES, augmentation=FASHION_MNIST_AUGMENTATION)


def cifar10_data(percentage: float = 1.0, *, root: Optional[str] = None,
                 validation_fraction: float = 0.1, split_seed: int = 0) -> DatasetSplits:
    """CIFAR-10 splits: 45,000 / 5,000 validation / 10,000 test at full share."""
    from nord.data_curators.augmentation import Augmentation
    from nord.data_curators.cifar10 import CIFAR10_CLASSES, load_cifar10
    train_x, train_y = load_cifar10("train", root)
    test_x, test_y = load_cifar10("test", root)
    return make_splits(train_x, train_y, test_x, test_y, percentage=percentage,
                       validation_fraction=validation_fraction, split_seed=split_seed,
                       classes=CIFAR10_CLASSES, augmentation=Augmentation(erasing_p=0.0))


def activity_recognition_data(percentage: float = 1.0, *, root: Optional[str] = None,
                              validation_fraction: float = 0.1,
                              split_seed: int = 0) -> DatasetSplits:
    """UCI chest-accelerometer activity windows (3 channels x 52 samples, 7 classes)."""
    from nord.data_curators.activity_recognition import load_activity_recognition
    train_x, train_y = load_activity_recognition("train", root)
    test_x, test_y = load_activity_recognition("test", root)
    return make_splits(train_x, train_y, test_x, test_y, percentage=percentage,
                       validation_fraction=validation_fraction, split_seed=split_seed)


def register_builtin_datasets(configs) -> None:
    """Add the built-in datasets to a :class:`~nord.configurations.all.Configs`."""
    configs.add_classification_dataset("fashion-mnist", 10, (28, 28), 1, fashion_mnist_data)
    configs.add_classification_dataset("cifar10", 10, (32, 32), 3, cifar10_data)
    # Table 3.1 lists one channel of 52 samples; the recordings have three
    # accelerometer axes, which are kept as three channels.
    configs.add_classification_dataset("activity_recognition", 7, (52,), 3,
                                       activity_recognition_data)
