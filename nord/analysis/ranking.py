"""Rank correlation between two evaluations of the same architectures (chapters 4-5).

A proxy evaluation (few epochs, a share of the data, another optimizer) is good
for a search when it *ranks* architectures as the full evaluation does. The
thesis measures that with Kendall's tau-b (§4.2.2), estimated by 800 bootstrap
resamples (§5.2.1), on accuracies rounded to the nearest integer percent (so
that differences of initial conditions do not swap near-equal networks), and on
subsets: the youngest architectures of an evolved lineage (Figure 4.5) or the
better half.

Every statistic here is scipy's (``scipy.stats.kendalltau`` with
``variant='b'``, ``spearmanr``, ``bootstrap``); this module checks the input,
fixes the conventions (percent rounding, seeded resampling, subsets) and
returns small result objects that figures and tables read. A tau of a
constant list is undefined: scipy's NaN is kept (a heatmap shows it blank),
never replaced by a number.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

from nord.errors import StatisticsInputError

__all__ = ["Correlation", "BootstrapEstimate", "CorrelationTable", "kendall_tau",
           "spearman_rho", "round_accuracies", "bootstrap_correlation", "youngest",
           "top_fraction", "correlation_table", "DEFAULT_RESAMPLES"]

#: bootstrap resamples of §5.2.1
DEFAULT_RESAMPLES = 800


@dataclass(frozen=True)
class Correlation:
    """A rank correlation, its two-sided p-value and the number of pairs."""

    statistic: float
    pvalue: float
    n: int
    method: str

    def __str__(self) -> str:
        return f"{self.method} {self.statistic:.3f} (p={self.pvalue:.3g}, n={self.n})"


@dataclass(frozen=True)
class BootstrapEstimate:
    """A bootstrap estimate: ``estimate`` is the mean of the resampled statistics,
    ``sample`` the statistic of the sample itself; ``low``/``high`` bound the
    percentile interval at ``confidence``. ``undefined`` counts the resamples
    whose statistic is undefined (all values tied), left out of the summary."""

    estimate: float
    sample: float
    standard_error: float
    low: float
    high: float
    confidence: float
    resamples: int
    distribution: np.ndarray
    undefined: int = 0

    def __str__(self) -> str:
        return (f"{self.estimate:.3f} ± {self.standard_error:.3f} "
                f"({100 * self.confidence:g}% CI {self.low:.3f}..{self.high:.3f})")


def _pair(a, b, name_a: str = "a", name_b: str = "b"):
    x = np.asarray(a, dtype=float).ravel()
    y = np.asarray(b, dtype=float).ravel()
    if x.size != y.size:
        raise StatisticsInputError(
            f"rank lists of different lengths: {name_a} has {x.size} values and {name_b} "
            f"{y.size}; give one value per architecture in both, in the same order")
    if x.size < 2:
        raise StatisticsInputError(f"a rank correlation needs at least 2 architectures, got "
                                   f"{x.size}")
    for name, values in ((name_a, x), (name_b, y)):
        if not np.all(np.isfinite(values)):
            bad = np.flatnonzero(~np.isfinite(values))[:5].tolist()
            raise StatisticsInputError(
                f"{name} holds non-finite values at positions {bad}; drop those "
                f"architectures from both lists (failed evaluations are not ranks)")
    return x, y


def _subset(x, y, subset):
    if subset is None:
        return x, y
    index = np.asarray(subset)
    if index.dtype == bool:
        if index.size != x.size:
            raise StatisticsInputError(f"a boolean subset needs one flag per architecture "
                                       f"({x.size}), got {index.size}")
        index = np.flatnonzero(index)
    elif index.size and not np.issubdtype(index.dtype, np.integer):
        raise StatisticsInputError(f"subset positions must be integers (or a boolean mask), "
                                   f"got {index.dtype} values such as {index.ravel()[0]!r}")
    index = index.astype(int).ravel()
    if np.unique(index).size != index.size:
        raise StatisticsInputError("subset positions must not repeat; give each architecture "
                                   "once")
    if index.size and (index.min() < -x.size or index.max() >= x.size):
        raise StatisticsInputError(f"subset positions must lie in 0..{x.size - 1}, got "
                                   f"{index.min()}..{index.max()}")
    if index.size < 2:
        raise StatisticsInputError(f"the subset holds {index.size} architectures; a rank "
                                   f"correlation needs at least 2")
    return x[index], y[index]


def _half_up(percent: np.ndarray) -> np.ndarray:
    """Nearest integer, halves up; the value is first rounded to 9 decimals, so that a
    half stored a hair below (0.285 * 100 = 28.499999999999996) still goes up."""
    return np.floor(np.round(percent, 9) + 0.5)


def round_accuracies(values, unit: str = "fraction") -> np.ndarray:
    """Accuracies rounded to the nearest integer percent (halves up), in their unit:
    ``unit='fraction'`` for 0..1 (0.4267 → 0.43), ``'percent'`` for 0..100."""
    x = np.asarray(values, dtype=float)
    if unit == "fraction":
        if np.any(np.abs(x[np.isfinite(x)]) > 1.0):
            raise StatisticsInputError(
                f"accuracies above 1 ({np.nanmax(x):g}) are not fractions; pass "
                f"unit='percent' for accuracies in 0..100")
        return _half_up(x * 100.0) / 100.0
    if unit == "percent":
        return _half_up(x)
    raise StatisticsInputError(f"unit is 'fraction' (0..1) or 'percent' (0..100), got {unit!r}")


def kendall_tau(a, b, *, subset=None) -> Correlation:
    """Kendall's tau-b of two evaluations of the same architectures (ties allowed),
    on all of them or on ``subset`` (positions or a boolean mask)."""
    from scipy.stats import kendalltau
    x, y = _subset(*_pair(a, b), subset)
    result = kendalltau(x, y, variant="b")
    return Correlation(float(result.statistic), float(result.pvalue), int(x.size), "tau-b")


def spearman_rho(a, b, *, subset=None) -> Correlation:
    """Spearman's rho (ties get average ranks), on all architectures or ``subset``."""
    from scipy.stats import spearmanr
    x, y = _subset(*_pair(a, b), subset)
    result = spearmanr(x, y)
    return Correlation(float(result.statistic), float(result.pvalue), int(x.size), "rho")


def _statistic(method: str):
    from scipy.stats import kendalltau, spearmanr
    if method == "tau":
        return lambda x, y: kendalltau(x, y, variant="b").statistic
    if method == "rho":
        return lambda x, y: spearmanr(x, y).statistic
    raise StatisticsInputError(f"method is 'tau' (Kendall's tau-b) or 'rho' (Spearman), got "
                               f"{method!r}")


def bootstrap_correlation(a, b, *, method: str = "tau", resamples: int = DEFAULT_RESAMPLES,
                          confidence: float = 0.95, seed: int = 0,
                          subset=None) -> BootstrapEstimate:
    """Bootstrap estimate of the rank correlation of ``a`` and ``b``: architectures
    are resampled with replacement (pairs kept together) ``resamples`` times from
    a generator seeded with ``seed``; the interval is the percentile one."""
    from scipy.stats import DegenerateDataWarning, bootstrap
    if not 0.0 < float(confidence) < 1.0:
        raise StatisticsInputError(f"confidence must lie in (0, 1), got {confidence}")
    if int(resamples) < 2:
        raise StatisticsInputError(f"resamples must be at least 2, got {resamples}")
    if int(seed) < 0:
        raise StatisticsInputError(f"seed must be 0 or more, got {seed}")
    x, y = _subset(*_pair(a, b), subset)
    statistic = _statistic(method)
    with warnings.catch_warnings():
        # a degenerate distribution (every resample with one tau, or none) is reported
        # through the estimate itself: a zero or NaN standard error, ``undefined``
        warnings.simplefilter("ignore", DegenerateDataWarning)
        result = bootstrap((x, y), statistic, n_resamples=int(resamples), paired=True,
                           vectorized=False, confidence_level=float(confidence),
                           method="percentile", rng=np.random.default_rng(int(seed)))
    distribution = np.asarray(result.bootstrap_distribution, dtype=float)
    defined = distribution[np.isfinite(distribution)]
    if defined.size == distribution.size:
        error, low, high = (float(result.standard_error), float(result.confidence_interval.low),
                            float(result.confidence_interval.high))
    elif defined.size >= 2:
        # a resample of a few architectures can hold one value only (no tau): scipy then
        # reports NaN for everything; summarise the resamples that have one instead
        tail = 50.0 * (1.0 - float(confidence))
        error = float(np.std(defined, ddof=1))
        low, high = (float(v) for v in np.percentile(defined, [tail, 100.0 - tail]))
    else:
        error = low = high = float("nan")
    return BootstrapEstimate(
        estimate=float(np.mean(defined)) if defined.size else float("nan"),
        sample=float(statistic(x, y)), standard_error=error, low=low, high=high,
        confidence=float(confidence), resamples=int(resamples), distribution=distribution,
        undefined=int(distribution.size - defined.size))


def youngest(ages, k: int) -> np.ndarray:
    """Positions of the ``k`` youngest architectures, ``ages`` being their birth order
    (a generation or an id: larger is younger), as Figure 4.5's "10 youngest"."""
    order = np.asarray(ages, dtype=float).ravel()
    if not 2 <= int(k) <= order.size:
        raise StatisticsInputError(f"k must lie in 2..{order.size} (the architectures "
                                   f"given), got {k}")
    return np.sort(np.argsort(-order, kind="stable")[:int(k)])


def top_fraction(reference, fraction: float = 0.5) -> np.ndarray:
    """Positions of the best ``fraction`` of architectures by ``reference`` (higher is
    better), as "the top 50 %"."""
    values = np.asarray(reference, dtype=float).ravel()
    if not 0.0 < float(fraction) <= 1.0:
        raise StatisticsInputError(f"fraction must lie in (0, 1], got {fraction}")
    k = max(2, int(round(float(fraction) * values.size)))
    if k > values.size:
        raise StatisticsInputError(f"the top {fraction:g} of {values.size} architectures "
                                   f"holds fewer than 2")
    return np.sort(np.argsort(-values, kind="stable")[:k])


@dataclass(frozen=True)
class CorrelationTable:
    """Rank correlations of each ``rows`` evaluation (the full ones) with each
    ``columns`` evaluation (the proxies): ``values[i, j]`` and ``pvalues[i, j]``;
    ``standard_errors`` where bootstrapped, else ``None``."""

    rows: Sequence[str]
    columns: Sequence[str]
    values: np.ndarray
    pvalues: np.ndarray
    standard_errors: Optional[np.ndarray] = None

    def value(self, row: str, column: str) -> float:
        return float(self.values[list(self.rows).index(row), list(self.columns).index(column)])

    def to_dict(self) -> dict:
        data = {"rows": list(self.rows), "columns": list(self.columns),
                "values": _plain(self.values), "pvalues": _plain(self.pvalues)}
        if self.standard_errors is not None:
            data["standard_errors"] = _plain(self.standard_errors)
        return data


def _plain(matrix: np.ndarray) -> list:
    return [[None if not np.isfinite(v) else float(v) for v in row] for row in matrix]


def correlation_table(rows: Mapping[str, Sequence[float]],
                      columns: Mapping[str, Sequence[float]], *, rounded: bool = False,
                      unit: str = "fraction", subset=None, bootstrap: bool = False,
                      resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> CorrelationTable:
    """Kendall's tau-b of every ``rows`` list against every ``columns`` list (all
    over the same architectures, in the same order): Figures 4.4/4.5 raw,
    Figure 5.7 with ``rounded=True``, Figures 5.6-5.8 with ``bootstrap=True``
    (the value is then the bootstrap mean and the p-value that of the sample).
    Each cell's resampling is seeded from ``seed`` and its position, so a cell's
    value does not depend on which other cells are computed."""
    if not rows or not columns:
        raise StatisticsInputError("a correlation table needs at least one row and one "
                                   "column of accuracies")
    prepare = (lambda v: round_accuracies(v, unit)) if rounded else (
        lambda v: np.asarray(v, dtype=float))
    row_values = {name: prepare(v) for name, v in rows.items()}
    column_values = {name: prepare(v) for name, v in columns.items()}
    shape = (len(rows), len(columns))
    values, pvalues = np.full(shape, np.nan), np.full(shape, np.nan)
    errors = np.full(shape, np.nan) if bootstrap else None
    for i, (row, x) in enumerate(row_values.items()):
        for j, (column, y) in enumerate(column_values.items()):
            _pair(x, y, row, column)
            plain = kendall_tau(x, y, subset=subset)
            pvalues[i, j] = plain.pvalue
            if bootstrap:
                estimate = bootstrap_correlation(x, y, resamples=resamples, subset=subset,
                                                 seed=seed * 1_000_003 + i * 1009 + j)
                values[i, j], errors[i, j] = estimate.estimate, estimate.standard_error
            else:
                values[i, j] = plain.statistic
    return CorrelationTable(list(rows), list(columns), values, pvalues, errors)
