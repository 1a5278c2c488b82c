"""In-memory dataset splits: train (a share of it), validation, test.

A search scores architectures on a validation split carved from the training
set (DESIGN §5); the test split is kept for final reports and for reproducing
the thesis, which scored on test. Both the carve and the training share are
deterministic: they come from a fixed ``split_seed``, independent of the seed
that initialises and shuffles a training run, and a smaller share is always a
subset of a larger one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch

from nord.errors import SettingsError

__all__ = ["TensorData", "DatasetSplits", "make_splits", "check_percentage"]


@dataclass(frozen=True)
class TensorData:
    """Inputs ``x`` and targets ``y`` of one split, first dimension = samples."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self):
        if len(self.x) != len(self.y):
            raise SettingsError(f"{len(self.x)} inputs but {len(self.y)} targets")

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: torch.Tensor) -> "TensorData":
        return TensorData(self.x[index], self.y[index])

    def to(self, device) -> "TensorData":
        return TensorData(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class DatasetSplits:
    """What a dataset's ``data_load`` returns: the splits, ready in memory.

    ``augmentation(images, generator)`` (optional) is the dataset's standard
    training-time augmentation; evaluators apply it when asked to.
    """

    train: TensorData
    test: TensorData
    validation: Optional[TensorData] = None
    classes: Optional[Sequence[str]] = None
    augmentation: Optional[Callable] = None

    def split(self, name: str) -> TensorData:
        """``'train'``, ``'validation'`` or ``'test'``."""
        if name == "validation" and self.validation is None:
            raise SettingsError("this dataset has no validation split; load it with "
                                "validation_fraction > 0 or score on 'test'")
        if name not in ("train", "validation", "test"):
            raise SettingsError(f"split must be 'train', 'validation' or 'test', got {name!r}")
        return getattr(self, name)


def check_percentage(percentage: float) -> float:
    """``percentage`` as a float in (0, 1]; the thesis's partial-training share."""
    value = float(percentage)
    if not 0.0 < value <= 1.0:
        raise SettingsError(f"percentage must be a share of the training set in (0, 1], "
                            f"got {percentage!r} (use 0.1 for 10 %)")
    return value


def make_splits(train_x: torch.Tensor, train_y: torch.Tensor,
                test_x: torch.Tensor, test_y: torch.Tensor, *,
                percentage: float = 1.0, validation_fraction: float = 0.1,
                split_seed: int = 0, classes: Optional[Sequence[str]] = None,
                augmentation: Optional[Callable] = None) -> DatasetSplits:
    """Carve a validation split from the training data and keep a share of the rest.

    One permutation drawn from ``split_seed`` orders the training samples: the
    last ``validation_fraction`` of it is the validation split, and the first
    ``percentage`` of the remainder is the training split.
    """
    percentage = check_percentage(percentage)
    if not 0.0 <= validation_fraction < 1.0:
        raise SettingsError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
    n = len(train_y)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    n_validation = int(round(n * validation_fraction))
    remaining = order[: n - n_validation]
    n_train = max(1, int(len(remaining) * percentage))
    train = TensorData(train_x, train_y)
    validation = train.subset(order[n - n_validation:]) if n_validation else None
    return DatasetSplits(train=train.subset(remaining[:n_train]),
                         test=TensorData(test_x, test_y), validation=validation,
                         classes=tuple(classes) if classes is not None else None,
                         augmentation=augmentation)
