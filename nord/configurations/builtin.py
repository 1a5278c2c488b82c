"""The built-in datasets of thesis table 3.1.

Image and time-series datasets load as :class:`~nord.data_curators.splits.DatasetSplits`;
the graph datasets of chapter 7 load as
:class:`~nord.design.predictors.datasets.ArchitectureDataset` objects:

* ``graph-nasbench3`` / ``graph-nasbench1``: cells drawn from the NAS-Bench-101
  table (:func:`nasbench101_graphs`);
* ``graph-f-mnist3`` / ``graph-f-mnist1``: the architectures the
  ``nord study fmnist-architectures`` run trained on Fashion-MNIST
  (:func:`fmnist_architecture_graphs`).

The ``…3`` datasets are ternary pair classification (G1 better, equal, worse;
KL divergence of the class distributions), the ``…1`` ones a one-score
regression trained with the margin ranking loss. Nodes are one-hot vectors
over 5 labels (input, the three NAS-Bench-101 operations, output).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from nord.data_curators.splits import DatasetSplits, check_percentage, make_splits
from nord.errors import GraphDatasetError

__all__ = ["register_builtin_datasets", "fashion_mnist_data", "cifar10_data",
           "activity_recognition_data", "nasbench101_graphs", "fmnist_architecture_graphs",
           "kl_divergence_loss", "FMNIST_ARCHITECTURES_FOLDER"]

#: where ``nord study fmnist-architectures`` writes its run by default (relative to the
#: working directory)
FMNIST_ARCHITECTURES_FOLDER = "runs/study-fmnist-architectures"


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


def _share(dataset, percentage: float):
    """The first ``percentage`` of a (randomly ordered) architecture dataset."""
    percentage = check_percentage(percentage)
    if percentage == 1.0:
        return dataset
    keep = int(round(len(dataset) * percentage))
    if keep < 2:
        raise GraphDatasetError(f"{100 * percentage:g} % of {len(dataset)} architectures "
                                f"leaves {keep}; a ranking needs at least 2: use a larger "
                                f"percentage or dataset")
    return dataset.subset(range(keep), f"{dataset.name} [{100 * percentage:g} %]")


def nasbench101_graphs(percentage: float = 1.0, *, table=None, size: int = 500, seed: int = 0,
                       epochs: int = 108, acc: str = "validation_accuracy"):
    """``size`` distinct NAS-Bench-101 cells (§7.3.4; 500 as §7.4.1 searches with),
    seeded, with their mean ``acc`` at ``epochs``; ``percentage`` keeps that share
    of them. ``table`` is the benchmark file (default: found through ``$NORD_DATA``)."""
    from nord.design.predictors.datasets import ArchitectureDataset
    return _share(ArchitectureDataset.from_nasbench101(size, seed, epochs, acc, table),
                  percentage)


def _fmnist_folders(root) -> list:
    if root is not None:
        return [Path(root)]
    folders = [Path(FMNIST_ARCHITECTURES_FOLDER)]
    if os.environ.get("NORD_DATA"):
        folders.insert(0, Path(os.environ["NORD_DATA"]) / "fmnist-architectures")
    return folders


def fmnist_architecture_graphs(percentage: float = 1.0, *, root=None):
    """The architectures a ``nord study fmnist-architectures`` run trained, with their
    Fashion-MNIST accuracy (§7.3.4); ``percentage`` keeps that share of them.

    ``root`` is the study's run folder; by default ``$NORD_DATA/fmnist-architectures``,
    then ``runs/study-fmnist-architectures`` (the study's default ``--out``)."""
    from nord.design.predictors.datasets import ArchitectureDataset
    from nord.studies.fmnist_architectures import FashionMNISTArchitecturesStudy
    folders = _fmnist_folders(root)
    for folder in folders:
        if (folder / "run.sqlite").exists():
            dataset = ArchitectureDataset.from_run_store(
                folder, space=FashionMNISTArchitecturesStudy.name)
            return _share(dataset, percentage)
    tried = ", ".join(str(f) for f in folders)
    raise GraphDatasetError(
        f"no Fashion-MNIST architectures dataset found (looked for run.sqlite in {tried}); "
        f"make it first with `nord study fmnist-architectures --out {folders[-1]}` (the "
        f"thesis's: add --preset thesis), then pass that folder as root= "
        f"(data_options={{'root': ...}})")


def kl_divergence_loss():
    """KL divergence between predicted and target class distributions, averaged
    over the batch (the criterion of the ternary graph datasets)."""
    import torch.nn as nn
    return nn.KLDivLoss(reduction="batchmean")


def _register_graph_datasets(configs) -> None:
    import torch.nn as nn
    loaders = {"nasbench": (nasbench101_graphs, ("kendall_tau", "spearman_rho")),
               "f-mnist": (fmnist_architecture_graphs,
                           ("kendall_tau", "spearman_rho", "accuracy"))}
    for source, (load, metrics) in loaders.items():
        configs.add_dataset(f"graph-{source}3", 3, 5, 1, kl_divergence_loss, metrics, load,
                            task="classification", data_organization="graph")
        configs.add_dataset(f"graph-{source}1", 1, 5, 1, nn.MarginRankingLoss, metrics, load,
                            task="regression", data_organization="graph")


def register_builtin_datasets(configs) -> None:
    """Add the built-in datasets to a :class:`~nord.configurations.all.Configs`."""
    configs.add_classification_dataset("fashion-mnist", 10, (28, 28), 1, fashion_mnist_data)
    configs.add_classification_dataset("cifar10", 10, (32, 32), 3, cifar10_data)
    # Table 3.1 lists one channel of 52 samples; the recordings have three
    # accelerometer axes, which are kept as three channels.
    configs.add_classification_dataset("activity_recognition", 7, (52,), 3,
                                       activity_recognition_data)
    _register_graph_datasets(configs)
