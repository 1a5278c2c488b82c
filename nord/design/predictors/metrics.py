"""How well a predictor ranks architectures (§7.3.5): Kendall's tau of the
predicted order against the true one, on all test architectures and on the
better half of them ("top-50 % tau"), the part a search cares about."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nord.errors import PredictorError

__all__ = ["RankingQuality", "ranking_quality"]


@dataclass(frozen=True)
class RankingQuality:
    """Kendall's tau-b on all architectures and on the top half by true value."""

    tau: float
    top50_tau: float
    n: int

    def as_dict(self) -> dict:
        return {"tau": self.tau, "top50_tau": self.top50_tau, "n": self.n}

    def __str__(self) -> str:
        return f"tau {self.tau:.3f}, top-50 % tau {self.top50_tau:.3f} (n={self.n})"


def ranking_quality(predicted, true) -> RankingQuality:
    """Tau and top-50 % tau of ``predicted`` scores (higher: better) against ``true``
    values. A constant prediction ranks nothing: its tau is 0, not undefined.

    >>> ranking_quality([1, 2, 3, 4], [10, 20, 30, 40])
    RankingQuality(tau=1.0, top50_tau=1.0, n=4)
    """
    from nord.analysis.ranking import kendall_tau, top_fraction
    predicted = np.asarray(predicted, dtype=float).ravel()
    true = np.asarray(true, dtype=float).ravel()
    if predicted.size != true.size:
        raise PredictorError(f"{predicted.size} predictions for {true.size} true values: "
                             f"give one prediction per architecture")
    if true.size < 4:
        raise PredictorError(f"ranking quality needs at least 4 architectures (2 in the top "
                             f"half), got {true.size}")
    if not (np.all(np.isfinite(predicted)) and np.all(np.isfinite(true))):
        raise PredictorError("predictions and true values must be finite numbers")

    def tau(subset=None) -> float:
        if subset is not None and np.ptp(predicted[subset]) == 0:
            return 0.0
        if subset is None and np.ptp(predicted) == 0:
            return 0.0
        value = kendall_tau(predicted, true, subset=subset).statistic
        return 0.0 if not np.isfinite(value) else float(value)

    return RankingQuality(tau=tau(), top50_tau=tau(top_fraction(true, 0.5)), n=int(true.size))
