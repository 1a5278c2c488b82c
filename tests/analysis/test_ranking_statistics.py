"""Rank correlation, bootstrap and hypothesis tests, checked against scipy and
statsmodels computed directly and against hand-worked cases."""

import numpy as np
import pytest
import scipy.stats

from nord.analysis.hypothesis import (benjamini_hochberg, kruskal_wallis, ks_two_sample,
                                      lilliefors)
from nord.analysis.ranking import (bootstrap_correlation, correlation_table, kendall_tau,
                                   round_accuracies, spearman_rho, top_fraction, youngest)
from nord.errors import StatisticsInputError, UsageError


def test_kendall_tau_hand_case():
    # one discordant pair of six: (5 - 1) / 6
    result = kendall_tau([1, 2, 3, 4], [1, 2, 4, 3])
    assert result.statistic == pytest.approx(4 / 6)
    assert result.n == 4 and result.method == "tau-b"


def test_tau_b_with_ties_equals_scipy():
    rng = np.random.default_rng(3)
    a = np.round(rng.uniform(0.3, 0.5, 40), 2)
    b = np.round(a + rng.normal(0, 0.02, 40), 2)
    expected = scipy.stats.kendalltau(a, b, variant="b")
    got = kendall_tau(a, b)
    assert got.statistic == expected.statistic and got.pvalue == expected.pvalue
    rho = scipy.stats.spearmanr(a, b)
    assert spearman_rho(a, b).statistic == rho.statistic
    assert spearman_rho(a, b).pvalue == rho.pvalue


def test_rounding_to_integer_percent():
    assert round_accuracies([0.4249, 0.4251, 0.9999]).tolist() == [0.42, 0.43, 1.0]
    assert round_accuracies([42.5, 43.5, 43.49], unit="percent").tolist() == [43, 44, 43]
    # halves that floating point stores a hair below (0.285 * 100 = 28.499999999999996)
    assert round_accuracies([0.145, 0.285, 0.565, 0.575]).tolist() == [0.15, 0.29, 0.57, 0.58]
    with pytest.raises(StatisticsInputError, match="unit='percent'"):
        round_accuracies([42.5])
    # rounding merges near-equal accuracies into ties, which tau-b accounts for
    raw = kendall_tau([0.421, 0.422, 0.50], [0.422, 0.421, 0.50]).statistic
    rounded = kendall_tau(round_accuracies([0.421, 0.422, 0.50]),
                          round_accuracies([0.422, 0.421, 0.50])).statistic
    assert raw == pytest.approx(1 / 3) and rounded == pytest.approx(1.0)


def test_bootstrap_matches_scipy_and_is_seeded():
    rng = np.random.default_rng(0)
    a = rng.normal(size=30)
    b = a + rng.normal(scale=0.7, size=30)
    estimate = bootstrap_correlation(a, b, resamples=200, seed=5)
    direct = scipy.stats.bootstrap(
        (a, b), lambda x, y: scipy.stats.kendalltau(x, y).statistic, n_resamples=200,
        paired=True, vectorized=False, method="percentile", rng=np.random.default_rng(5))
    assert estimate.standard_error == direct.standard_error
    assert estimate.low == direct.confidence_interval.low
    assert estimate.high == direct.confidence_interval.high
    assert estimate.distribution.shape == (200,)
    assert estimate.estimate == pytest.approx(direct.bootstrap_distribution.mean())
    assert estimate.sample == scipy.stats.kendalltau(a, b).statistic
    assert estimate.low < estimate.estimate < estimate.high
    again = bootstrap_correlation(a, b, resamples=200, seed=5)
    assert np.array_equal(again.distribution, estimate.distribution)
    other = bootstrap_correlation(a, b, resamples=200, seed=6)
    assert not np.array_equal(other.distribution, estimate.distribution)
    assert bootstrap_correlation(a, b).resamples == 800  # the thesis's default


def test_subsets_youngest_and_top_half():
    ages = [0, 1, 2, 3, 4, 5]
    assert youngest(ages, 3).tolist() == [3, 4, 5]
    assert top_fraction([0.1, 0.9, 0.5, 0.7], 0.5).tolist() == [1, 3]
    a, b = [1, 2, 3, 4, 5, 6], [6, 5, 4, 1, 2, 3]
    assert kendall_tau(a, b, subset=youngest(ages, 3)).statistic == pytest.approx(1.0)
    assert kendall_tau(a, b).statistic == scipy.stats.kendalltau(a, b).statistic
    mask = np.array([False, False, False, True, True, True])
    assert kendall_tau(a, b, subset=mask).statistic == pytest.approx(1.0)


def test_correlation_table_against_scipy():
    rng = np.random.default_rng(1)
    full = {f"opt{i}_50": rng.uniform(0.3, 0.6, 12) for i in range(2)}
    proxies = {f"opt{i}_{e}": v + rng.normal(0, 0.03, 12)
               for i, v in enumerate(full.values()) for e in (1, 5)}
    table = correlation_table(full, proxies)
    for row, x in full.items():
        for column, y in proxies.items():
            assert table.value(row, column) == scipy.stats.kendalltau(x, y).statistic
    rounded = correlation_table(full, proxies, rounded=True)
    x, y = full["opt0_50"], proxies["opt0_1"]
    assert rounded.value("opt0_50", "opt0_1") == scipy.stats.kendalltau(
        np.floor(x * 100 + 0.5), np.floor(y * 100 + 0.5)).statistic
    booted = correlation_table(full, proxies, bootstrap=True, resamples=50)
    assert booted.standard_errors.shape == (2, 4) and np.all(booted.standard_errors > 0)
    assert abs(booted.value("opt0_50", "opt0_1") - table.value("opt0_50", "opt0_1")) < 0.2
    assert table.to_dict()["columns"] == list(proxies)


def test_bad_input_is_refused_clearly():
    with pytest.raises(StatisticsInputError, match="different lengths: a has 3 values and b 2"):
        kendall_tau([1, 2, 3], [1, 2])
    with pytest.raises(StatisticsInputError, match="at least 2"):
        kendall_tau([1], [1])
    with pytest.raises(StatisticsInputError, match="non-finite values at positions \\[1\\]"):
        spearman_rho([1, float("nan"), 3], [1, 2, 3])
    with pytest.raises(StatisticsInputError, match="confidence"):
        bootstrap_correlation([1, 2, 3], [1, 2, 3], confidence=1.5)
    with pytest.raises(StatisticsInputError, match="different lengths: opt_50 has 3"):
        correlation_table({"opt_50": [1, 2, 3]}, {"opt_1": [1, 2]})
    with pytest.raises(StatisticsInputError, match="k must lie in 2..3"):
        youngest([0, 1, 2], 5)
    with pytest.raises(StatisticsInputError, match="integers"):
        kendall_tau([1, 2, 3], [1, 2, 3], subset=[0.7, 1.9])
    with pytest.raises(StatisticsInputError, match="must not repeat"):
        kendall_tau([1, 2, 3], [1, 2, 3], subset=[0, 0, 1])
    with pytest.raises(StatisticsInputError, match="constant"):
        lilliefors([0.5] * 10)
    assert issubclass(StatisticsInputError, UsageError)


def test_lilliefors_against_statsmodels():
    from statsmodels.stats.diagnostic import lilliefors as direct
    rng = np.random.default_rng(2)
    normal = rng.normal(size=800)
    result = lilliefors(normal)
    assert (result.statistic, result.pvalue) == tuple(float(v) for v in direct(normal))
    assert not result.rejected
    assert lilliefors(rng.exponential(size=800)).rejected


def test_ks_kruskal_and_benjamini_hochberg_against_scipy_and_statsmodels():
    from statsmodels.stats.multitest import multipletests
    rng = np.random.default_rng(4)
    a, b, c = rng.normal(0, 1, 50), rng.normal(0.8, 1, 50), rng.normal(0, 1, 50)
    ks = ks_two_sample(a, b)
    assert ks.pvalue == scipy.stats.ks_2samp(a, b).pvalue and ks.rejected
    kw = kruskal_wallis(a, b, c)
    assert kw.statistic == scipy.stats.kruskal(a, b, c).statistic
    pvalues = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205]
    adjusted, rejected = benjamini_hochberg(pvalues)
    reject_sm, adjusted_sm, _, _ = multipletests(pvalues, alpha=0.05, method="fdr_bh")
    assert np.allclose(adjusted, adjusted_sm) and rejected.tolist() == reject_sm.tolist()
    with pytest.raises(StatisticsInputError, match="at least 2 groups"):
        kruskal_wallis(a)
    with pytest.raises(StatisticsInputError, match=r"\[0, 1\]"):
        benjamini_hochberg([0.5, 1.5])


def test_bootstrap_leaves_out_resamples_without_a_tau():
    # four architectures with ties: some resamples hold one value only
    estimate = bootstrap_correlation([1, 1, 2, 3], [1, 2, 2, 3], resamples=300, seed=0)
    undefined = np.isnan(estimate.distribution)
    assert estimate.undefined == undefined.sum() > 0
    defined = estimate.distribution[~undefined]
    assert estimate.standard_error == pytest.approx(np.std(defined, ddof=1))
    assert estimate.estimate == pytest.approx(defined.mean())
    assert estimate.low == pytest.approx(np.percentile(defined, 2.5))
