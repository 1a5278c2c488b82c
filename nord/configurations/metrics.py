"""Metrics computed on whole splits: accumulate per batch, finish once.

A metric is an object with ``update(outputs, targets)`` over batches and
``result() -> float``; :func:`make_metrics` builds fresh ones from names.
The rank correlations (``kendall_tau``, ``spearman_rho``: the metrics of the
graph datasets of table 3.1) compare one predicted score per architecture
with its true value, over the whole split.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable

import torch

from nord.errors import InvalidArgumentError, SettingsError

__all__ = ["Accuracy", "MeanSquaredError", "MeanAbsoluteError", "R2Score", "KendallTau",
           "SpearmanRho", "METRICS", "make_metrics"]


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


class _RankCorrelation:
    def __init__(self):
        self.outputs, self.targets = [], []

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        if outputs.numel() != targets.numel():
            raise InvalidArgumentError(
                f"a rank correlation compares one predicted score per architecture with "
                f"its true value; got outputs of shape {tuple(outputs.shape)} for targets of "
                f"shape {tuple(targets.shape)} (score each architecture, not each pair)")
        self.outputs.append(outputs.detach().reshape(-1).double().cpu())
        self.targets.append(targets.detach().reshape(-1).double().cpu())

    def _pair(self):
        if not self.outputs:
            return None
        return torch.cat(self.outputs).numpy(), torch.cat(self.targets).numpy()


class KendallTau(_RankCorrelation):
    """Kendall's tau-b of the predicted scores against the true values (NaN if undefined)."""

    def result(self) -> float:
        from nord.analysis.ranking import kendall_tau
        pair = self._pair()
        return float("nan") if pair is None or len(pair[0]) < 2 else \
            kendall_tau(*pair).statistic


class SpearmanRho(_RankCorrelation):
    """Spearman's rho of the predicted scores against the true values (NaN if undefined)."""

    def result(self) -> float:
        from nord.analysis.ranking import spearman_rho
        pair = self._pair()
        return float("nan") if pair is None or len(pair[0]) < 2 else \
            spearman_rho(*pair).statistic


METRICS: Dict[str, Callable[[], object]] = {
    "accuracy": Accuracy,
    "mse": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "r2": R2Score,
    "kendall_tau": KendallTau,
    "spearman_rho": SpearmanRho,
}


def make_metrics(names: Iterable[str]) -> Dict[str, object]:
    """Fresh metric objects for ``names`` (keys of :data:`METRICS`)."""
    made = {}
    for name in names:
        if name not in METRICS:
            raise SettingsError(f"unknown metric {name!r}; known metrics: {sorted(METRICS)}")
        made[name] = METRICS[name]()
    return made
