"""A study's tables as data, from its cell folders: one row per cell (study.csv), per comparison
of an arm with a reference arm at one level (comparisons.csv), per trend of such a comparison
over a numeric factor (trends.csv) and per seed (seeds.csv).

Every comparison uses the report's statistics (pifexp.experiments.report.statistics): seeds pair
up where both arms recorded the same split, the mean difference gets the corrected resampled
interval and test, the primary metric's p-values are adjusted across the study.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pifexp.errors import PifexpError
from pifexp.experiments.report.convergence import stopped_by_patience
from pifexp.experiments.report.patch_grid import run_network
from pifexp.experiments.report.runs import CellRun, find_run_dirs, load_run
from pifexp.experiments.report.statistics import (
    corrected_ttest,
    mean_interval,
    minimum_detectable_difference,
    paired_comparison,
    unpaired_comparison,
)
from pifexp.experiments.report.tables import Pair, pair_runs, with_adjusted_p_values
from pifexp.models.summary import parameter_counts

TREND_SCALES = ("linear", "log2")


@dataclass(frozen=True)
class StudyCell:
    """One cell of a study: its run, its level of the factor and its arm."""

    run: CellRun
    level: str
    level_label: str
    arm: str
    arm_label: str
    x: float  # where the cell sits on a numeric factor's axis (NaN for a categorical factor)

    @property
    def name(self) -> str:
        return self.run.run_dir.name


def load_study(
    out_dir: str | Path, study: Mapping[str, Any], seeds: int | None = None
) -> list[StudyCell]:
    """The cells in out_dir/cells/ (each a `pifexp train` run folder made by the study)."""
    cells = []
    for folder in find_run_dirs([out_dir]):
        run = load_run(folder, seeds)
        level, arm = run.setting_value("study", "level"), run.setting_value("arm", "name")
        if level is None or arm is None:
            raise PifexpError(f"{folder} is not a cell of a study (its config has no study.level "
                              "or arm.name)")  # fmt: skip
        if run.setting_value("study", "name") != study["name"]:
            raise PifexpError(f"{folder} is a cell of the {run.setting_value('study', 'name')} "
                              f"study, not of {study['name']}: use another out_dir")  # fmt: skip
        level_label = run.setting_value("level", "label") or str(level)
        cells.append(StudyCell(run, str(level), str(level_label), str(arm),
                               str(run.setting_value("arm", "label") or arm),
                               _x(run, str(level), study)))  # fmt: skip
    seen: dict[tuple[str, str], Path] = {}
    for cell in cells:
        key = (cell.level, cell.arm)
        if key in seen:
            raise PifexpError(f"{seen[key]} and {cell.run.run_dir} hold the same cell (level "
                              f"{cell.level}, arm {cell.arm})")  # fmt: skip
        seen[key] = cell.run.run_dir
    return cells


def _x(run: CellRun, level: str, study: Mapping[str, Any]) -> float:
    """A numeric factor's value for the cell: the mean over seeds of a results column
    (study.x_column, e.g. the training subjects a level kept), or the level itself."""
    if not study.get("numeric"):
        return math.nan
    column = study.get("x_column")
    if column:
        values = run.results[column] if column in run.results else pd.Series(dtype=float)
        return float(values.astype(float).mean()) if len(values) else math.nan
    try:
        return float(level)
    except ValueError:
        return math.nan


def ordered(cells: Sequence[StudyCell], reporting: Mapping[str, Any]) -> list[StudyCell]:
    """Levels by their value (numeric factors) or reporting.order.level; arms by
    reporting.order.arm; anything not listed after, by name."""
    order = reporting["order"]

    def position(kind: str, value: str) -> tuple[int, str]:
        values = list(order.get(kind) or [])
        return (values.index(value), "") if value in values else (len(values), value)

    def key(cell: StudyCell) -> tuple:
        numeric = math.inf if math.isnan(cell.x) else cell.x
        return (numeric, position("level", cell.level), position("arm", cell.arm))

    return sorted(cells, key=key)


def levels(cells: Sequence[StudyCell], reporting: Mapping[str, Any]) -> list[str]:
    """The study's levels in order."""
    return list(dict.fromkeys(cell.level for cell in ordered(cells, reporting)))


def cell_table(cells: Sequence[StudyCell], reporting: Mapping[str, Any]) -> pd.DataFrame:
    """study.csv: one row per cell, levels and arms in order."""
    confidence = float(reporting["statistics"]["confidence"])
    rows = []
    for cell in ordered(cells, reporting):
        results = cell.run.results
        row: dict[str, Any] = {
            "cell": cell.name, "level": cell.level, "level_label": cell.level_label,
            "x": cell.x, "arm": cell.arm, "arm_label": cell.arm_label,
            "status": cell.run.status, "seeds": len(results),
            "seeds_planned": len(cell.run.seeds_planned),
        }  # fmt: skip
        for metric in ("balanced_accuracy", "early_stopping_epoch", "roc_auc"):
            values = results[metric].astype(float)
            row[f"{metric}_mean"] = values.mean() if len(values) else math.nan
            row[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else math.nan
            low, high = mean_interval(values, cell.run.test_train_ratio, confidence)
            row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = low, high
        row["stopped_by_cap"] = int((~stopped_by_patience(results)).sum())
        for column in ("train_subjects", "train_images", "test_subjects"):
            values = results[column] if column in results else pd.Series(dtype=float)
            row[f"{column}_min"], row[f"{column}_max"] = values.min(), values.max()
        row.update(parameter_counts(run_network(cell.run)))
        row["train_seconds"] = float(results["seconds"].sum()) if len(results) else 0.0
        row["data_source"] = cell.run.data_source
        rows.append(row)
    return pd.DataFrame(rows)


# (reference cell, arm cell, their runs' pairing): one comparison of a study
Compared = tuple[StudyCell, StudyCell, Pair]


def _pairs(cells: Sequence[StudyCell], study: Mapping[str, Any], reporting: Mapping[str, Any]
           ) -> list[Compared]:  # fmt: skip
    """(reference, arm, pairing) at each level: every arm with each of study.references it is
    not; whether their seeds pair up is read once (the split digests of both runs)."""
    by_key = {(cell.level, cell.arm): cell for cell in cells}
    pairs = []
    for reference in study["references"]:
        for cell in ordered(cells, reporting):
            base = by_key.get((cell.level, reference))
            if base is not None and cell.arm != reference and cell.arm not in _earlier(
                study["references"], reference
            ):
                pairs.append((base, cell, pair_runs(base.run, cell.run)))
    return pairs


def _earlier(references: Sequence[str], reference: str) -> list[str]:
    """References listed before `reference`: already compared with it."""
    return list(references[: list(references).index(reference)])


def _aligned(pair: Pair, metric: str) -> tuple[pd.Series, pd.Series]:
    """Both runs' values of a metric, seed by seed where they pair up."""
    first, second = pair.baseline.results, pair.pif.results  # the reference, the arm
    if pair.paired:
        seeds = list(pair.seeds)
        first, second = first.set_index("seed").loc[seeds], second.set_index("seed").loc[seeds]
    return first[metric].astype(float), second[metric].astype(float)


def comparison_table(
    cells: Sequence[StudyCell], study: Mapping[str, Any], reporting: Mapping[str, Any]
) -> pd.DataFrame:
    """comparisons.csv: each arm minus each reference arm, level by level, per metric; the
    primary metric's p-values adjusted across the study's comparisons."""
    statistics = reporting["statistics"]
    confidence = float(statistics["confidence"])
    alpha, power = float(statistics["alpha"]), float(statistics["power"])
    rows = []
    for base, arm, pair in _pairs(cells, study, reporting):
        ratio = (base.run.test_train_ratio + arm.run.test_train_ratio) / 2
        paired = pair.paired
        for metric in statistics["metrics"]:
            first, second = _aligned(pair, str(metric))
            result = (
                paired_comparison(str(metric), first, second, ratio, confidence)
                if paired
                else unpaired_comparison(str(metric), first, second, confidence)
            )
            rows.append({
                "level": arm.level, "level_label": arm.level_label, "x": arm.x,
                "arm": arm.arm, "arm_label": arm.arm_label, "reference": base.arm,
                "reference_label": base.arm_label, "metric": metric,
                "pairing": "paired" if paired else "unpaired", "seeds": result.n,
                "reference_mean": first.mean(), "arm_mean": second.mean(),
                "difference": result.difference, "ci_low": result.ci_low,
                "ci_high": result.ci_high, "effect_size": result.effect_size,
                "effect_size_kind": "d_z" if paired else "d", "p_value": result.p_value,
                "primary_test": result.tests[0], "secondary_p_value": result.secondary_p_value,
                "secondary_test": result.tests[1], "difference_sd": result.difference_sd,
                "test_train_ratio": result.test_train_ratio,
                "minimum_detectable_difference": minimum_detectable_difference(
                    result.difference_sd, result.n, result.test_train_ratio, alpha, power),
            })  # fmt: skip
    table = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    return with_adjusted_p_values(table, statistics)


COMPARISON_COLUMNS = [
    "level", "level_label", "x", "arm", "arm_label", "reference", "reference_label", "metric",
    "pairing", "seeds", "reference_mean", "arm_mean", "difference", "ci_low", "ci_high",
    "effect_size", "effect_size_kind", "p_value", "primary_test", "secondary_p_value",
    "secondary_test", "difference_sd", "test_train_ratio", "minimum_detectable_difference",
]  # fmt: skip


def trend_table(
    cells: Sequence[StudyCell], study: Mapping[str, Any], reporting: Mapping[str, Any]
) -> pd.DataFrame:
    """trends.csv, for a numeric factor: per arm, reference and metric, the slope of the paired
    difference over the factor (per unit, or per doubling with study.trend_scale=log2). Each
    seed's least-squares slope over the levels where both arms finished it, then the mean slope
    over seeds with the corrected resampled interval and test (the correction's n_test/n_train
    is the largest of the levels': conservative)."""
    statistics = reporting["statistics"]
    scale = str(study.get("trend_scale") or "linear")
    if scale not in TREND_SCALES:
        raise PifexpError(f"study.trend_scale={scale!r} must be one of {', '.join(TREND_SCALES)}")
    rows = []
    pairs = _pairs(cells, study, reporting) if study.get("numeric") else []
    for (reference, arm), group in _by_arm(pairs).items():
        for metric in statistics["metrics"]:
            labels = {"arm_label": group[0][1].arm_label,
                      "reference_label": group[0][0].arm_label}  # fmt: skip
            rows.append(_trend_row(group, str(metric), scale, statistics) | labels
                        | {"arm": arm, "reference": reference, "metric": metric})  # fmt: skip
    table = pd.DataFrame(rows, columns=TREND_COLUMNS)
    return with_adjusted_p_values(table, statistics)


TREND_COLUMNS = ["arm", "arm_label", "reference", "reference_label", "metric", "scale", "levels",
                 "seeds", "slope", "ci_low", "ci_high", "p_value", "test_train_ratio"]  # fmt: skip


def _by_arm(pairs: Sequence[Compared]) -> dict[tuple[str, str], list[Compared]]:
    grouped: dict[tuple[str, str], list[Compared]] = {}
    for base, arm, pair in pairs:
        if pair.paired and not math.isnan(arm.x):
            grouped.setdefault((base.arm, arm.arm), []).append((base, arm, pair))
    return grouped


def _trend_row(group: Sequence[Compared], metric: str, scale: str,
               statistics: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    differences = {}
    for _, arm, pair in group:
        first, second = _aligned(pair, metric)
        differences[_scaled(arm.x, scale)] = second - first
    frame = pd.DataFrame(differences)  # rows: seeds, columns: levels
    slopes = [
        np.polyfit(row.dropna().index.to_numpy(dtype=float), row.dropna().to_numpy(), 1)[0]
        for _, row in frame.iterrows()
        if row.notna().sum() >= 2
    ]
    ratio = max(max(b.run.test_train_ratio, a.run.test_train_ratio) for b, a, _ in group)
    _, p, low, high = corrected_ttest(slopes, ratio, float(statistics["confidence"]))
    return {"scale": scale, "levels": frame.shape[1], "seeds": len(slopes),
            "slope": float(np.mean(slopes)) if slopes else math.nan, "ci_low": low,
            "ci_high": high, "p_value": p, "test_train_ratio": ratio}  # fmt: skip


def _scaled(x: float, scale: str) -> float:
    return math.log2(x) if scale == "log2" else x


def seed_table(cells: Sequence[StudyCell], reporting: Mapping[str, Any]) -> pd.DataFrame:
    """seeds.csv: per cell and seed its test metrics, how it stopped and its split's digest."""
    rows = []
    for cell in ordered(cells, reporting):
        results = cell.run.results.reset_index(drop=True)
        hashes = cell.run.split_hashes()
        patience = stopped_by_patience(results)
        for index, record in results.iterrows():
            rows.append({
                "cell": cell.name, "level": cell.level, "arm": cell.arm,
                "seed": int(record["seed"]),
                "balanced_accuracy": record["balanced_accuracy"],
                "roc_auc": record["roc_auc"],
                "early_stopping_epoch": record["early_stopping_epoch"],
                "stopped_early": bool(patience[index]),
                "train_subjects": record.get("train_subjects", math.nan),
                "split_sha256": hashes.get(int(record["seed"])),
            })  # fmt: skip
    return pd.DataFrame(rows)
