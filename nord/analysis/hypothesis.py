"""Hypothesis tests the thesis uses on NAS results.

* Lilliefors (§5.3.2): is a bootstrap distribution normal, so that its
  standard error gives a confidence interval? (statsmodels; the optional
  ``stats`` extra)
* Kolmogorov-Smirnov, two samples (chapter 8, table 8.3): do two groups of
  validation curves come from one distribution?
* Kruskal-Wallis (chapter 8): do several groups share one median?
* Benjamini-Hochberg (chapter 8): the false-discovery-rate correction of many
  such p-values.

Each is the scipy or statsmodels function, behind a check of the input and
one small result type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from nord.errors import MissingDependencyError, StatisticsInputError

__all__ = ["TestResult", "lilliefors", "ks_two_sample", "kruskal_wallis",
           "benjamini_hochberg"]


@dataclass(frozen=True)
class TestResult:
    """A test statistic and its p-value; ``rejected`` at ``alpha``."""

    __test__ = False  # not a pytest test class

    name: str
    statistic: float
    pvalue: float
    alpha: float = 0.05

    @property
    def rejected(self) -> bool:
        """Whether the null hypothesis is rejected at ``alpha``."""
        return self.pvalue < self.alpha

    def __str__(self) -> str:
        verdict = "rejected" if self.rejected else "not rejected"
        return (f"{self.name}: statistic {self.statistic:.4g}, p={self.pvalue:.3g} "
                f"(null {verdict} at {self.alpha:g})")


def _sample(values, name: str, minimum: int) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    if x.size < minimum:
        raise StatisticsInputError(f"{name} needs at least {minimum} values, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise StatisticsInputError(f"{name} holds non-finite values; drop them first")
    return x


def _alpha(alpha: float) -> float:
    if not 0.0 < float(alpha) < 1.0:
        raise StatisticsInputError(f"alpha must lie in (0, 1), got {alpha}")
    return float(alpha)


def lilliefors(values, alpha: float = 0.05) -> TestResult:
    """Lilliefors' test of normality (null: the values are normal, mean and
    variance estimated from them)."""
    try:
        from statsmodels.stats.diagnostic import lilliefors as statsmodels_lilliefors
    except ImportError as error:
        raise MissingDependencyError(
            "the Lilliefors test comes from statsmodels: pip install 'nord[stats]' (or "
            "pip install statsmodels)") from error
    x = _sample(values, "the Lilliefors test", 5)
    if np.unique(x).size < 2:
        raise StatisticsInputError("the Lilliefors test is undefined for a constant sample "
                                   "(no spread to compare with a normal one)")
    statistic, pvalue = statsmodels_lilliefors(x, dist="norm", pvalmethod="table")
    return TestResult("Lilliefors", float(statistic), float(pvalue), _alpha(alpha))


def ks_two_sample(a, b, alpha: float = 0.05) -> TestResult:
    """Two-sample Kolmogorov-Smirnov test (null: one distribution)."""
    from scipy.stats import ks_2samp
    result = ks_2samp(_sample(a, "the first KS sample", 1), _sample(b, "the second KS sample", 1))
    return TestResult("Kolmogorov-Smirnov", float(result.statistic), float(result.pvalue),
                      _alpha(alpha))


def kruskal_wallis(*groups, alpha: float = 0.05) -> TestResult:
    """Kruskal-Wallis H test (null: all groups share one median)."""
    from scipy.stats import kruskal
    if len(groups) < 2:
        raise StatisticsInputError(f"Kruskal-Wallis compares at least 2 groups, got "
                                   f"{len(groups)}")
    samples = [_sample(g, f"group {i} of Kruskal-Wallis", 1) for i, g in enumerate(groups)]
    if np.unique(np.concatenate(samples)).size < 2:
        raise StatisticsInputError("Kruskal-Wallis is undefined when every value is equal")
    result = kruskal(*samples)
    return TestResult("Kruskal-Wallis", float(result.statistic), float(result.pvalue),
                      _alpha(alpha))


def benjamini_hochberg(pvalues: Sequence[float], alpha: float = 0.05):
    """Benjamini-Hochberg adjusted p-values and which hypotheses are rejected at a
    false discovery rate ``alpha``: ``(adjusted, rejected)`` arrays."""
    from scipy.stats import false_discovery_control
    p = _sample(pvalues, "Benjamini-Hochberg", 1)
    if np.any((p < 0) | (p > 1)):
        raise StatisticsInputError("p-values must lie in [0, 1]")
    adjusted = np.asarray(false_discovery_control(p, method="bh"), dtype=float)
    return adjusted, adjusted <= _alpha(alpha)
