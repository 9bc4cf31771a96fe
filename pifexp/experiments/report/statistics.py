"""Statistics of seeds: intervals, effect sizes and tests of PIF against the baseline, power.

The seeds of a cell are repeated random splits of one cohort: their test sets overlap and their
training sets share most subjects, so seed-level numbers are correlated and the plain t-test is
anti-conservative. Intervals and the primary test therefore use the corrected resampled t
statistic of Nadeau and Bengio (2003): the variance of the mean is s^2 * (1/k + n_test/n_train)
instead of s^2 / k. Distributions, tests and adjustments come from scipy and statsmodels.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

PAIRED_TESTS = ("corrected resampled t-test", "Wilcoxon signed-rank")
UNPAIRED_TESTS = ("Welch t-test", "Mann-Whitney U")
LEGACY_TESTS = ("wilcoxon", "ttest_rel")  # the plain paired tests in table1.csv
MOST_SEEDS = 1000  # the power search gives up beyond this many seeds


@dataclass(frozen=True)
class Comparison:
    """PIF minus baseline on one metric over seeds."""

    metric: str
    paired: bool  # seed k of both arms had the same split
    n: int  # pairs (paired) or the smaller arm's seeds (unpaired)
    difference: float  # mean of PIF minus mean of baseline
    ci_low: float
    ci_high: float
    effect_size: float  # d_z (paired) or Cohen's d (unpaired)
    hodges_lehmann: float  # median of Walsh averages (paired) or of pairwise differences
    p_value: float  # the primary test: corrected resampled t (paired) or Welch (unpaired)
    secondary_p_value: float  # Wilcoxon signed-rank (paired) or Mann-Whitney U (unpaired)
    difference_sd: float  # SD of the paired differences (nan when unpaired)
    test_train_ratio: float  # n_test / n_train of the splits (the correction's term)

    @property
    def tests(self) -> tuple[str, str]:
        return PAIRED_TESTS if self.paired else UNPAIRED_TESTS


def corrected_variance_factor(k: int, test_train_ratio: float) -> float:
    """Nadeau and Bengio's 1/k + n_test/n_train (1/k alone for independent samples)."""
    return 1.0 / k + test_train_ratio


def corrected_ttest(
    values: Sequence[float], test_train_ratio: float, confidence: float = 0.95
) -> tuple[float, float, float, float]:
    """Corrected resampled t-test of mean(values) = 0 over k seeds: (t, two-sided p, interval
    low, interval high) with k - 1 degrees of freedom. NaN where it is undefined."""
    values = np.asarray(values, dtype=float)
    k = len(values)
    if k < 2:
        return math.nan, math.nan, math.nan, math.nan
    if np.ptp(values) == 0:  # no spread (std would be rounding noise): no test, a point interval
        return math.nan, math.nan, float(values[0]), float(values[0])
    se = math.sqrt(corrected_variance_factor(k, test_train_ratio) * values.var(ddof=1))
    t = float(values.mean() / se)
    p = float(2 * stats.t.sf(abs(t), k - 1))
    low, high = stats.t.interval(confidence, k - 1, loc=values.mean(), scale=se)
    return t, p, float(low), float(high)


def mean_interval(
    values: Sequence[float], test_train_ratio: float, confidence: float = 0.95
) -> tuple[float, float]:
    """The interval of a cell's mean over its seeds (corrected for overlapping resamples)."""
    _, _, low, high = corrected_ttest(values, test_train_ratio, confidence)
    return low, high


def hodges_lehmann(differences: Sequence[float]) -> float:
    """Hodges-Lehmann estimate of a paired shift: the median of the Walsh averages."""
    d = np.asarray(differences, dtype=float)
    if not len(d):
        return math.nan
    i, j = np.triu_indices(len(d))
    return float(np.median((d[i] + d[j]) / 2))


def hodges_lehmann_shift(first: Sequence[float], second: Sequence[float]) -> float:
    """Hodges-Lehmann estimate of the shift second - first: the median of pairwise differences."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if not len(a) or not len(b):
        return math.nan
    return float(np.median(np.subtract.outer(b, a)))


def paired_comparison(
    metric: str,
    baseline: Sequence[float],
    pif: Sequence[float],
    test_train_ratio: float,
    confidence: float = 0.95,
) -> Comparison:
    """PIF vs baseline over seeds that shared their splits (index k of both is seed k)."""
    d = np.asarray(pif, dtype=float) - np.asarray(baseline, dtype=float)
    _, p, low, high = corrected_ttest(d, test_train_ratio, confidence)
    sd = float(d.std(ddof=1)) if len(d) > 1 else math.nan
    return Comparison(
        metric=metric,
        paired=True,
        n=len(d),
        difference=float(d.mean()) if len(d) else math.nan,
        ci_low=low,
        ci_high=high,
        effect_size=float(d.mean() / sd) if sd and not math.isnan(sd) else math.nan,
        hodges_lehmann=hodges_lehmann(d),
        p_value=p,
        secondary_p_value=_quiet(
            stats.wilcoxon, len(d) >= 2 and bool(np.any(d)), d, zero_method="wilcox"
        ),
        difference_sd=sd,
        test_train_ratio=test_train_ratio,
    )


def unpaired_comparison(
    metric: str, baseline: Sequence[float], pif: Sequence[float], confidence: float = 0.95
) -> Comparison:
    """PIF vs baseline when the arms' seeds did not share their splits: Welch's t-test (with its
    interval), Mann-Whitney U, Cohen's d and the Hodges-Lehmann shift."""
    a, b = np.asarray(baseline, dtype=float), np.asarray(pif, dtype=float)
    defined = len(a) >= 2 and len(b) >= 2 and (np.ptp(a) > 0 or np.ptp(b) > 0)
    low = high = p = math.nan
    if defined:
        result = stats.ttest_ind(b, a, equal_var=False)
        p = float(result.pvalue)
        low, high = (float(v) for v in result.confidence_interval(confidence))
    pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2) if defined else math.nan
    return Comparison(
        metric=metric,
        paired=False,
        n=min(len(a), len(b)),
        difference=float(b.mean() - a.mean()) if len(a) and len(b) else math.nan,
        ci_low=low,
        ci_high=high,
        effect_size=float((b.mean() - a.mean()) / pooled) if defined and pooled else math.nan,
        hodges_lehmann=hodges_lehmann_shift(a, b),
        p_value=p,
        secondary_p_value=_quiet(stats.mannwhitneyu, defined, b, a),
        difference_sd=math.nan,
        test_train_ratio=math.nan,
    )


def adjust_p_values(p_values: Sequence[float], method: str = "holm") -> list[float]:
    """Adjusted p-values across comparisons (statsmodels' multipletests: holm, fdr_bh, ...);
    undefined (NaN) p-values stay NaN and do not count."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(len(p), math.nan)
    defined = ~np.isnan(p)
    if defined.any():
        adjusted[defined] = multipletests(p[defined], method=method)[1]
    return adjusted.tolist()


def minimum_detectable_difference(
    sd: float, k: int, test_train_ratio: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest true mean difference that the corrected test over k paired seeds finds with
    this power at this two-sided alpha, given the SD of the differences."""
    if k < 2 or not sd or math.isnan(sd):
        return math.nan
    # the one-sample t power has noncentrality d * sqrt(k); the corrected test's standard error
    # is sd * sqrt(1/k + n_test/n_train)
    d = TTestPower().solve_power(effect_size=None, nobs=k, alpha=alpha, power=power)
    return float(d * math.sqrt(k) * sd * math.sqrt(corrected_variance_factor(k, test_train_ratio)))


def seeds_needed(
    difference: float, sd: float, test_train_ratio: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The fewest seeds with which the corrected test finds `difference` with this power; inf
    where none up to MOST_SEEDS does (the split-to-split variance alone is too large)."""
    if not sd or math.isnan(sd) or math.isnan(difference):
        return math.nan
    analysis = TTestPower()
    for k in range(2, MOST_SEEDS + 1):
        spread = sd * math.sqrt(corrected_variance_factor(k, test_train_ratio))
        noncentrality = difference / spread
        if analysis.power(effect_size=noncentrality / math.sqrt(k), nobs=k, alpha=alpha) >= power:
            return float(k)
    return math.inf


def _quiet(test: Callable[..., Any], defined: bool, *args: Any, **kwargs: Any) -> float:
    """A scipy test's p-value, NaN where the test is undefined; small-sample warnings silenced."""
    if not defined:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(test(*args, **kwargs).pvalue)


def paired_tests(
    baseline: pd.DataFrame,
    pif: pd.DataFrame,
    metrics: Sequence[str],
    alternative: str = "two-sided",
    zero_method: str = "wilcox",
) -> dict[str, float]:
    """The plain paired tests of earlier versions, still in table1.csv: per metric the mean
    difference (PIF - baseline) over the seeds both finished and the p-values of the Wilcoxon
    signed-rank test and the (uncorrected, anti-conservative for resampled splits) paired t-test.
    NaN where a test is undefined (fewer than two pairs, or no difference at all)."""
    merged = baseline[["seed", *metrics]].merge(
        pif[["seed", *metrics]], on="seed", suffixes=("_baseline", "_pif")
    )
    result: dict[str, float] = {"paired_seeds": float(len(merged))}
    for metric in metrics:
        with_pif = merged[f"{metric}_pif"].to_numpy(dtype=float)
        with_baseline = merged[f"{metric}_baseline"].to_numpy(dtype=float)
        difference = with_pif - with_baseline
        result[f"{metric}_difference"] = float(difference.mean()) if len(merged) else math.nan
        varies = len(merged) >= 2 and bool(np.any(difference != 0))
        result[f"{metric}_wilcoxon_p_value"] = _quiet(
            stats.wilcoxon, varies, with_pif, with_baseline, zero_method=zero_method,
            alternative=alternative,
        )  # fmt: skip
        result[f"{metric}_ttest_rel_p_value"] = _quiet(
            stats.ttest_rel, varies and np.std(difference) > 0, with_pif, with_baseline,
            alternative=alternative,
        )  # fmt: skip
    return result
