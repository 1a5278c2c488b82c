"""Metrics computed on whole splits: accumulate per batch, finish once.

A metric is an object with ``update(outputs, targets)`` over batches and
``result() -> float``; :func:`make_metrics` builds fresh ones from names.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable

import torch

from nord.errors import SettingsError

__all__ = ["Accuracy", "MeanSquaredError", "MeanAbsoluteError", "R2Score",
           "METRICS", "make_metrics"]


class Accuracy:
    """Share of samples whose arg-max output equals the target class."""

    def __init__(self):
        self.correct, self.total = 0, 0

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.correct += int((outputs.argmax(dim=1) == targets).sum())
        self.total += len(targets)

    def result(self) -> float:
        return self.correct / self.total if self.total else float("nan")


class _Regression:
    def __init__(self):
        self.n, self.sum_target, self.sum_target_sq = 0, 0.0, 0.0
        self.sum_sq_error, self.sum_abs_error = 0.0, 0.0

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        outputs = outputs.reshape(targets.shape).double()
        targets = targets.double()
        error = outputs - targets
        self.n += targets.numel()
        self.sum_sq_error += float((error ** 2).sum())
        self.sum_abs_error += float(error.abs().sum())
        self.sum_target += float(targets.sum())
        self.sum_target_sq += float((targets ** 2).sum())


class MeanSquaredError(_Regression):
    """Mean of squared errors."""

    def result(self) -> float:
        return self.sum_sq_error / self.n if self.n else float("nan")


class MeanAbsoluteError(_Regression):
    """Mean of absolute errors."""

    def result(self) -> float:
        return self.sum_abs_error / self.n if self.n else float("nan")


class R2Score(_Regression):
    """Coefficient of determination: 1 − SSE / total sum of squares."""

    def result(self) -> float:
        if not self.n:
            return float("nan")
        total = self.sum_target_sq - self.sum_target ** 2 / self.n
        return 1.0 - self.sum_sq_error / total if total > 0 else float("nan")


METRICS: Dict[str, Callable[[], object]] = {
    "accuracy": Accuracy,
    "mse": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "r2": R2Score,
}


def make_metrics(names: Iterable[str]) -> Dict[str, object]:
    """Fresh metric objects for ``names`` (keys of :data:`METRICS`)."""
    made = {}
    for name in names:
        if name not in METRICS:
            raise SettingsError(f"unknown metric {name!r}; known metrics: {sorted(METRICS)}")
        made[name] = METRICS[name]()
    return made
