"""The dataset registry: :class:`Configs` (thesis §3.2.1, table 3.1).

A :class:`DatasetConfig` holds what the pipeline needs to know about one
dataset: number of outputs, input shape and channels, criterion, metrics,
dimension keeping, data loader, dense head and data organization.

``Configs()`` returns the shared default registry (the thesis's singleton),
so datasets added by one part of a program are visible to evaluators created
elsewhere, as listing 3.5 relies on. ``Configs(isolated=True)`` gives an
independent registry with only the built-in datasets; evaluators accept a
registry explicitly (``LocalEvaluator(..., configs=...)``), so no hidden
global state has to reach an algorithm.

Built-in datasets: ``fashion-mnist``, ``cifar10``, ``activity_recognition`` and
the graph datasets of chapter 7, ``graph-nasbench3``, ``graph-nasbench1``,
``graph-f-mnist3``, ``graph-f-mnist1`` (their loaders give
:class:`~nord.design.predictors.datasets.ArchitectureDataset` objects; see
:mod:`nord.configurations.builtin`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch.nn as nn

from nord.configurations.metrics import METRICS
from nord.errors import InvalidArgumentError, SettingsError, UnknownDatasetError

__all__ = ["Configs", "DatasetConfig"]

DataLoad = Callable[..., Any]
HeadFactory = Callable[[int, int], nn.Module]


@dataclass(frozen=True)
class DatasetConfig:
    """Everything the pipeline needs to know about one dataset."""

    name: str
    num_outputs: int                       # classes, or 1 for regression
    input_shape: Tuple[int, ...]           # (H, W) images, (L,) time series
    channels: int
    criterion: Callable[[], nn.Module]     # a loss factory, e.g. nn.CrossEntropyLoss
    metrics: Tuple[str, ...]               # names in nord.configurations.metrics.METRICS
    data_load: DataLoad                    # data_load(percentage, ...) -> DatasetSplits or loaders
    task: str = "classification"           # or "regression"
    dense_head: Optional[HeadFactory] = None   # None: NeuralNet's default head
    dimension_keeping: Optional[int] = None    # fixed channel count C, or None
    data_organization: str = "matrix"          # "matrix" (images, series) or "graph"

    def __post_init__(self):
        if self.data_organization not in ("matrix", "graph"):
            raise SettingsError(f"data_organization must be 'matrix' or 'graph', "
                                f"got {self.data_organization!r}")
        if self.task not in ("classification", "regression"):
            raise SettingsError(f"task must be 'classification' or 'regression', got {self.task!r}")
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise SettingsError(f"unknown metrics {unknown} for dataset {self.name!r}; "
                                f"known: {sorted(METRICS)}")
        if int(self.num_outputs) < 1 or int(self.channels) < 1:
            raise SettingsError(f"dataset {self.name!r}: num_outputs and channels must be positive")
        if not callable(self.data_load):
            raise InvalidArgumentError(f"dataset {self.name!r}: data_load must be callable")


def _as_shape(input_shape: Union[int, Sequence[int]]) -> Tuple[int, ...]:
    return (int(input_shape),) if isinstance(input_shape, int) else tuple(int(v) for v in input_shape)


class Configs:
    """A registry of :class:`DatasetConfig` by name."""

    _shared: Optional["Configs"] = None

    def __new__(cls, *, isolated: bool = False) -> "Configs":
        if isolated:
            return cls._create()
        if cls._shared is None:
            cls._shared = cls._create()
        return cls._shared

    @classmethod
    def _create(cls) -> "Configs":
        registry = super().__new__(cls)
        registry._datasets: Dict[str, DatasetConfig] = {}
        from nord.configurations.builtin import register_builtin_datasets
        register_builtin_datasets(registry)
        return registry

    # ---------------------------------------------------------------- adding
    def add_dataset(self, name: str, num_outputs: int, input_shape, channels: int,
                    criterion: Callable[[], nn.Module], metrics: Sequence[str],
                    data_load: DataLoad, *, task: str = "classification",
                    dense_head: Optional[HeadFactory] = None,
                    dimension_keeping: Optional[int] = None,
                    data_organization: str = "matrix", replace: bool = True) -> DatasetConfig:
        """Register any dataset; returns its configuration."""
        if not isinstance(name, str) or not name:
            raise SettingsError(f"dataset names are non-empty strings, got {name!r}")
        if name in self._datasets and not replace:
            raise SettingsError(f"dataset {name!r} is already registered")
        config = DatasetConfig(name, int(num_outputs), _as_shape(input_shape), int(channels),
                               criterion, tuple(metrics), data_load, task, dense_head,
                               dimension_keeping, data_organization)
        self._datasets[name] = config
        return config

    def add_classification_dataset(self, name: str, num_classes: int, input_shape,
                                   channels: int, data_load: DataLoad,
                                   data_organization: str = "matrix", **options) -> DatasetConfig:
        """A classification dataset: cross-entropy loss, accuracy."""
        return self.add_dataset(name, num_classes, input_shape, channels, nn.CrossEntropyLoss,
                                options.pop("metrics", ("accuracy",)), data_load,
                                task="classification", data_organization=data_organization,
                                **options)

    def add_regression_dataset(self, name: str, input_shape, channels: int,
                               data_load: DataLoad, data_organization: str = "matrix",
                               **options) -> DatasetConfig:
        """A regression dataset: one output, mean squared error loss, MSE/MAE/R² metrics."""
        return self.add_dataset(name, 1, input_shape, channels, nn.MSELoss,
                                options.pop("metrics", ("mse", "mae", "r2")), data_load,
                                task="regression", data_organization=data_organization,
                                **options)

    # ---------------------------------------------------------------- reading
    def __getitem__(self, name: str) -> DatasetConfig:
        try:
            return self._datasets[name]
        except (KeyError, TypeError):
            matches = difflib.get_close_matches(str(name), list(self._datasets), n=3)
            hint = f" (did you mean {', '.join(repr(m) for m in matches)}?)" if matches else ""
            raise UnknownDatasetError(
                f"dataset {name!r} is not registered{hint}; registered datasets: "
                f"{', '.join(self.names())}. Add one with Configs().add_classification_dataset()"
            ) from None

    def get(self, name: str) -> DatasetConfig:
        """Same as ``configs[name]``."""
        return self[name]

    def __contains__(self, name: object) -> bool:
        return name in self._datasets

    def names(self) -> List[str]:
        """Registered dataset names, in registration order."""
        return list(self._datasets)

    def __repr__(self) -> str:
        return f"Configs({', '.join(self.names())})"
