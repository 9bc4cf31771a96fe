"""How the covariates (age, sex, site, ... from the manifest) and the classes spread over a
split's partitions: a table per seed, so that an unlucky split can be seen."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from pifexp.data.manifest import LABEL, PATH, SESSION, SUBJECT

NOT_COVARIATES = (SUBJECT, PATH, SESSION)


def covariate_balance(
    manifest_df: pd.DataFrame, partitions: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """Long table: covariate, statistic (mean, sd and n of a numeric covariate; the count of
    each level of any other, the label's included) and one column per partition (its images)."""
    rows = []
    for column in [c for c in manifest_df.columns if c not in NOT_COVARIATES]:
        values = manifest_df[column]
        numeric = pd.api.types.is_numeric_dtype(values) and column != LABEL
        parts = {name: values.iloc[positions] for name, positions in partitions.items()}
        if numeric:
            for statistic in ("mean", "sd", "n"):
                rows.append({"covariate": column, "statistic": statistic,
                             **{name: _summary(part, statistic) for name, part in parts.items()}})
        else:
            for level in sorted(values.dropna().astype(str).unique()):
                rows.append({"covariate": column, "statistic": f"n {level}",
                             **{name: int((part.astype(str) == level).sum())
                                for name, part in parts.items()}})  # fmt: skip
    return pd.DataFrame(rows, columns=["covariate", "statistic", *partitions])


def _summary(values: pd.Series, statistic: str) -> float:
    numbers = values.astype(float).dropna()
    if statistic == "n":
        return float(len(numbers))
    if statistic == "sd":
        return float(numbers.std(ddof=1)) if len(numbers) > 1 else float("nan")
    return float(numbers.mean()) if len(numbers) else float("nan")
