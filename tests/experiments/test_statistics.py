"""Each statistic of the report against a known value: scipy and statsmodels on fixed numbers,
worked examples, and sklearn for the bootstrap's metrics."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from statsmodels.duration.survfunc import survdiff
from statsmodels.stats.power import TTestPower

from pifexp.experiments.report.bootstrap import (
    seed_interval,
    weighted_balanced_accuracy,
    weighted_roc_auc,
)
from pifexp.experiments.report.convergence import kaplan_meier, logrank_p_value
from pifexp.experiments.report.statistics import (
    adjust_p_values,
    corrected_ttest,
    hodges_lehmann,
    hodges_lehmann_shift,
    mean_interval,
    minimum_detectable_difference,
    paired_comparison,
    seeds_needed,
    unpaired_comparison,
)


def test_corrected_resampled_ttest_worked_example():
    # differences 1..5: mean 3, variance 2.5; k = 5 and n_test / n_train = 0.25, so the
    # variance of the mean is 2.5 * (1/5 + 0.25) = 1.125 and t = 3 / sqrt(1.125) = 2 sqrt(2)
    t, p, low, high = corrected_ttest([1, 2, 3, 4, 5], 0.25)
    assert t == pytest.approx(2 * math.sqrt(2))
    assert p == pytest.approx(2 * stats.t.sf(2 * math.sqrt(2), 4))
    assert p == pytest.approx(0.04742, abs=1e-5)
    half = stats.t.ppf(0.975, 4) * math.sqrt(1.125)
    assert (low, high) == pytest.approx((3 - half, 3 + half))


def test_without_overlap_the_corrected_test_is_the_one_sample_t_test():
    values = [0.02, -0.01, 0.05, 0.03, 0.00, 0.04]
    t, p, low, high = corrected_ttest(values, 0.0)
    plain = stats.ttest_1samp(values, 0.0)
    assert (t, p) == pytest.approx((plain.statistic, plain.pvalue))
    assert (low, high) == pytest.approx(tuple(plain.confidence_interval(0.95)))
    # overlapping splits widen the interval of a cell's mean
    assert np.diff(mean_interval(values, 0.25))[0] > high - low


def test_undefined_without_two_values_or_any_spread():
    assert all(math.isnan(v) for v in corrected_ttest([0.7], 0.2))
    t, p, low, high = corrected_ttest([0.1, 0.1, 0.1], 0.2)
    assert math.isnan(t) and math.isnan(p) and low == high == 0.1


def test_hodges_lehmann_estimates():
    # Walsh averages of (1, 2, 3): 1, 1.5, 2, 2, 2.5, 3
    assert hodges_lehmann([1, 2, 3]) == 2
    # of (-1, 0, 4): -1, -0.5, 1.5, 0, 2, 4 -> median 0.75 (the mean would be 1)
    assert hodges_lehmann([-1, 0, 4]) == 0.75
    # two samples: the median of all 6 differences second - first
    assert hodges_lehmann_shift([1, 2], [3, 5, 10]) == np.median([2, 1, 4, 3, 9, 8])


def test_paired_comparison_effect_sizes_and_wilcoxon():
    baseline = np.array([0.60, 0.61, 0.63, 0.64, 0.70])
    pif = baseline + np.array([0.01, 0.02, 0.04, 0.05, -0.01])
    result = paired_comparison("balanced_accuracy", baseline, pif, 0.25)
    d = pif - baseline
    assert result.paired and result.n == 5 and result.difference == pytest.approx(d.mean())
    assert result.effect_size == pytest.approx(d.mean() / d.std(ddof=1))  # d_z
    assert result.hodges_lehmann == pytest.approx(hodges_lehmann(d))
    assert result.secondary_p_value == pytest.approx(stats.wilcoxon(d).pvalue)
    assert result.p_value == pytest.approx(corrected_ttest(d, 0.25)[1])
    assert result.tests == ("corrected resampled t-test", "Wilcoxon signed-rank")


def test_unpaired_comparison_is_welch_and_mann_whitney():
    baseline, pif = [0.6, 0.62, 0.65, 0.61], [0.66, 0.7, 0.64, 0.69, 0.71]
    result = unpaired_comparison("balanced_accuracy", baseline, pif)
    welch = stats.ttest_ind(pif, baseline, equal_var=False)
    assert not result.paired and result.p_value == pytest.approx(welch.pvalue)
    assert (result.ci_low, result.ci_high) == pytest.approx(tuple(welch.confidence_interval()))
    assert result.secondary_p_value == pytest.approx(stats.mannwhitneyu(pif, baseline).pvalue)
    assert result.tests == ("Welch t-test", "Mann-Whitney U")


def test_holm_and_benjamini_hochberg_skip_undefined_p_values():
    # Holm on (0.01, 0.04, 0.03): 3 * 0.01, then max(2 * 0.03, 0.03) = 0.06 for both others
    assert adjust_p_values([0.01, 0.04, math.nan, 0.03]) == pytest.approx(
        [0.03, 0.06, math.nan, 0.06], nan_ok=True
    )
    assert adjust_p_values([0.01, 0.04, 0.03], "fdr_bh") == pytest.approx([0.03, 0.04, 0.04])


def test_minimum_detectable_difference_and_seeds_needed():
    sd = 0.08
    d = TTestPower().solve_power(effect_size=None, nobs=10, alpha=0.05, power=0.8)
    # without overlap: the textbook one-sample t power
    assert minimum_detectable_difference(sd, 10, 0.0) == pytest.approx(d * sd)
    # overlapping splits: the standard error is sd * sqrt(1/k + n_test/n_train)
    corrected = minimum_detectable_difference(sd, 10, 0.25)
    assert corrected == pytest.approx(d * math.sqrt(10) * sd * math.sqrt(0.1 + 0.25))
    # the seeds a difference needs: power reached there, not one seed before
    k = seeds_needed(0.05, sd, 0.0)
    power = TTestPower().power
    assert power(effect_size=0.05 / sd, nobs=k, alpha=0.05) >= 0.8
    assert power(effect_size=0.05 / sd, nobs=k - 1, alpha=0.05) < 0.8
    # the split-to-split variance never shrinks: a difference below its floor is out of reach
    assert seeds_needed(0.05, 0.2, 0.25) == math.inf


def test_weighted_metrics_are_sklearns_with_sample_weights():
    rng = np.random.default_rng(3)
    labels, scores = rng.integers(0, 2, 40), rng.random(40)
    scores[:5] = scores[5:10]  # ties count half
    weights = rng.integers(0, 4, (6, 40)).astype(float)
    predicted = (scores >= 0.5).astype(int)
    for row in weights:
        assert weighted_balanced_accuracy(labels, predicted, row[None])[0] == pytest.approx(
            balanced_accuracy_score(labels, predicted, sample_weight=row)
        )
        assert weighted_roc_auc(labels, scores, row[None])[0] == pytest.approx(
            roc_auc_score(labels, scores, sample_weight=row)
        )


def predictions(repeats: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 10)
    scores = np.clip(labels * 0.3 + rng.random(20) * 0.7, 0, 1)
    subjects = [f"s{i}" for i in range(20)]
    frame = pd.DataFrame({"label": labels, "probability": scores, "subject_id": subjects})
    return pd.concat([frame] * repeats, ignore_index=True)


def test_seed_interval_is_repeatable_and_holds_the_estimate():
    first, again = seed_interval(predictions(), resamples=500), seed_interval(predictions(),
                                                                              resamples=500)
    assert first == again and first.clustered
    data = predictions()
    ba = balanced_accuracy_score(data.label, data.probability >= 0.5)
    assert first.balanced_accuracy[0] <= ba <= first.balanced_accuracy[1]
    auc = roc_auc_score(data.label, data.probability)
    assert first.roc_auc[0] <= auc <= first.roc_auc[1]


def test_a_subjects_repeated_images_are_one_draw():
    # three identical visits per subject: by subject, the interval stays that of 20 subjects;
    # by image (no subject column) it would pretend to 60 independent images
    by_subject = seed_interval(predictions(3), resamples=1000)
    by_image = seed_interval(predictions(3).drop(columns="subject_id"), resamples=1000)
    single = seed_interval(predictions(1), resamples=1000)
    width = lambda interval: interval.balanced_accuracy[1] - interval.balanced_accuracy[0]  # noqa: E731
    assert width(by_subject) == pytest.approx(width(single), rel=0.25)
    assert width(by_image) < 0.75 * width(by_subject) and not by_image.clustered


def test_capped_seeds_are_censored():
    results = pd.DataFrame({"early_stopping_epoch": [9, 11, 14, 24, 24],
                            "stopped_early": [True, True, True, False, False]})  # fmt: skip
    curve = kaplan_meier(results)
    # 3 of 5 seeds stopped early; the two capped ones never count as stopping
    assert list(curve.surv_times) == [10, 12, 15]
    assert curve.surv_prob[-1] == pytest.approx(0.4)
    other = results.assign(
        early_stopping_epoch=[5, 6, 8, 10, 24], stopped_early=[True] * 4 + [False]
    )
    expected = survdiff(np.r_[results.early_stopping_epoch, other.early_stopping_epoch] + 1,
                        np.r_[results.stopped_early, other.stopped_early].astype(int),
                        np.repeat([0, 1], 5))[1]  # fmt: skip
    assert logrank_p_value(results, other) == pytest.approx(expected)
