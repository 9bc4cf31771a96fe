"""Tests of PIF against the baseline over the seeds that both arms finished."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

TESTS = ("wilcoxon", "ttest_rel")


def paired_tests(
    baseline: pd.DataFrame,
    pif: pd.DataFrame,
    metrics: Sequence[str],
    alternative: str = "two-sided",
    zero_method: str = "wilcox",
) -> dict[str, float]:
    """Paired tests of PIF vs baseline over the seeds both finished (seed k of both arms trains
    on the same split): per metric the mean difference (PIF - baseline) and the p-values of the
    Wilcoxon signed-rank test and the paired t-test. NaN where a test is undefined (fewer than
    two pairs, or no difference at all)."""
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # small samples: scipy warns, the p-value stands
            result[f"{metric}_wilcoxon_p_value"] = (
                float(stats.wilcoxon(with_pif, with_baseline, zero_method=zero_method,
                                     alternative=alternative).pvalue)
                if varies else math.nan
            )  # fmt: skip
            result[f"{metric}_ttest_rel_p_value"] = (
                float(stats.ttest_rel(with_pif, with_baseline, alternative=alternative).pvalue)
                if varies and np.std(difference) > 0 else math.nan
            )  # fmt: skip
    return result
