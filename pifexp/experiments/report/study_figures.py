"""A study's figures, one per metric: each arm's mean with its 95% interval against the factor
(left), and the paired difference of each arm minus the reference arm with its 95% interval
(right). A numeric factor is an axis of numbers; categorical levels, or a study whose factor is
the arm itself (one level), are positions."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pifexp.experiments.report.style import TITLE_SIZE, new_figure, save, style

METRICS = {  # metric: (axis label, scale, chance line)
    "balanced_accuracy": ("balanced accuracy (%)", 100.0, 50.0),
    "early_stopping_epoch": ("early-stopping epoch", 1.0, None),
    "roc_auc": ("ROC AUC", 1.0, 0.5),
}
TICK_WIDTH = 22  # characters per line of a level's tick label
REFERENCE_COLOURS = ["black", "tab:orange", "tab:green"]
COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
           "tab:pink", "tab:gray", "tab:olive", "tab:cyan"]  # fmt: skip


def write_study_figures(
    table: pd.DataFrame,
    comparisons: pd.DataFrame,
    study: Mapping[str, Any],
    reporting: Mapping[str, Any],
    folder: Path,
) -> list[Path]:
    """figures/<study>-<metric>.<format> for every compared metric."""
    figures = reporting["figures"]
    written = []
    with style():
        for metric in reporting["statistics"]["metrics"]:
            if metric not in METRICS:
                continue
            figure = metric_figure(table, comparisons[comparisons["metric"] == metric], study,
                                   str(metric), figures)  # fmt: skip
            path = folder / f"{study['name']}-{metric.replace('_', '-')}.{figures['format']}"
            written.append(save(figure, path, figures))
    return written


def metric_figure(
    table: pd.DataFrame,
    comparisons: pd.DataFrame,
    study: Mapping[str, Any],
    metric: str,
    figures: Mapping[str, Any],
) -> Any:
    axis_label, scale, chance = METRICS[metric]
    figure = new_figure(figures, width=2.2, height=1.15)
    arms_ax, difference_ax = figure.subplots(1, 2)
    one_level = table["level"].nunique() == 1
    positions, ticks = _positions(table, study, one_level)
    log2 = ticks is None and study.get("trend_scale") == "log2"
    if log2:  # a factor that doubles (training subjects): a log axis, shifts in its units
        positions = {key: float(np.log2(value)) for key, value in positions.items()}
    arms = list(dict.fromkeys(table["arm"]))
    colours = {arm: COLOURS[i % len(COLOURS)] for i, arm in enumerate(arms)}
    step = _offset_step(positions)
    for index, arm in enumerate(arms):
        rows = table[table["arm"] == arm]
        x = np.array([positions[key] for key in _keys(rows, one_level)], dtype=float)
        shift = 0 if one_level else (index - (len(arms) - 1) / 2) * step
        _errorbars(arms_ax, x + shift, rows, f"{metric}_mean", f"{metric}_ci_low",
                   f"{metric}_ci_high", scale, colours[arm], rows["arm_label"].iloc[0],
                   line=bool(study.get("numeric")) and not one_level)  # fmt: skip
    if chance is not None:
        arms_ax.axhline(chance, color="0.7", lw=0.8, ls="--")
    references = list(dict.fromkeys(comparisons["reference"]))
    groups = comparisons.groupby(["arm", "reference"], sort=False)
    for index, ((arm, reference), rows) in enumerate(groups):
        x = np.array([positions[key] for key in _keys(rows, one_level)], dtype=float)
        which = references.index(reference)
        reference_label = rows["reference_label"].iloc[0]
        if one_level:  # the arms are the axis: one colour and marker per reference
            shift, colour = 0.15 * which, REFERENCE_COLOURS[which % len(REFERENCE_COLOURS)]
            label = f"minus {reference_label}" if _first(groups, index, reference) else None
        else:
            shift, colour = (index - (len(arms) - 1) / 2) * step, colours.get(arm, "0.3")
            label = f"{rows['arm_label'].iloc[0]} − {reference_label}"
        _errorbars(difference_ax, x + shift, rows, "difference", "ci_low", "ci_high", scale,
                   colour, label, line=bool(study.get("numeric")) and not one_level,
                   marker="os^"[which % 3])  # fmt: skip
    difference_ax.axhline(0, color="0.5", lw=0.8)
    for ax, what in ((arms_ax, axis_label), (difference_ax, f"difference in {axis_label}")):
        ax.set_ylabel(what)
        if ticks is not None:
            ax.set_xticks(list(ticks), list(ticks.values()), rotation=30 if one_level else 0,
                          ha="right" if one_level else "center")  # fmt: skip
        else:
            ax.set_xlabel(study["factor_label"])
            if log2:
                values = sorted(set(positions.values()))
                ax.set_xticks(values, [f"{2**v:.0f}" for v in values])
        labelled = ax.get_legend_handles_labels()[0]
        if labelled and (ax is difference_ax or not one_level):
            ax.legend(frameon=False, fontsize=6)
    arms_ax.set_title(f"{study['title']}: each arm (mean, 95% CI)", fontsize=TITLE_SIZE)
    difference_ax.set_title("paired difference (mean, 95% CI)", fontsize=TITLE_SIZE)
    figure.tight_layout()
    return figure


def _first(groups: Any, index: int, reference: str) -> bool:
    """Whether group `index` is the first one compared with `reference` (labelled once)."""
    earlier = [ref for position, ((_, ref), _) in enumerate(groups) if position < index]
    return reference not in earlier


def _keys(rows: pd.DataFrame, one_level: bool) -> list[str]:
    return list(rows["arm"] if one_level else rows["level"])


def _positions(
    table: pd.DataFrame, study: Mapping[str, Any], one_level: bool
) -> tuple[dict[str, float], dict[float, str] | None]:
    """Where each level (or, with one level, each arm) sits on the x axis, and tick labels
    for positions that are not numbers."""
    if one_level:
        arms = list(dict.fromkeys(table["arm"]))
        labels = dict(zip(table["arm"], table["arm_label"], strict=True))
        return {arm: float(i) for i, arm in enumerate(arms)}, {
            float(i): labels[arm] for i, arm in enumerate(arms)
        }
    levels = table.drop_duplicates("level")
    if study.get("numeric") and levels["x"].notna().all():
        x_by_level = table.groupby("level", sort=False)["x"].mean()
        return {level: float(x) for level, x in x_by_level.items()}, None
    return {level: float(i) for i, level in enumerate(levels["level"])}, {
        float(i): textwrap.fill(str(label), TICK_WIDTH)
        for i, label in enumerate(levels["level_label"])
    }


def _offset_step(positions: Mapping[str, float]) -> float:
    values = sorted(set(positions.values()))
    gaps = np.diff(values) if len(values) > 1 else np.array([1.0])
    return float(gaps.min()) * 0.04


def _errorbars(ax: Any, x: np.ndarray, rows: pd.DataFrame, mean: str, low: str, high: str,
               scale: float, colour: str, label: str, line: bool,
               marker: str = "o") -> None:  # fmt: skip
    y = rows[mean].to_numpy(dtype=float) * scale
    below = y - rows[low].to_numpy(dtype=float) * scale
    above = rows[high].to_numpy(dtype=float) * scale - y
    errors = np.nan_to_num(np.vstack([below, above]), nan=0.0)
    ax.errorbar(x, y, yerr=errors, fmt=marker + ("-" if line else ""), ms=3.5, capsize=2.5,
                color=colour, label=label, lw=1.0)  # fmt: skip
