"""Figures of baseline against PIF for one task and setting: balanced accuracy per seed, when
early stopping ended training (Kaplan-Meier, the cap censoring), best and stopping epochs, and the
mean validation curves with their 95 % bands."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pifexp.experiments import rundir
from pifexp.experiments.report.convergence import kaplan_meier, stopped_by_patience
from pifexp.experiments.report.runs import CellRun
from pifexp.experiments.report.statistics import paired_comparison
from pifexp.experiments.report.style import LEGEND_SIZE, TITLE_SIZE, new_figure
from pifexp.experiments.report.tables import Pair

ARM_COLOURS = {"baseline": "tab:blue", "pif": "tab:orange"}


def _arm_label(run: CellRun, labels: Mapping[str, Any]) -> str:
    return str(labels["model"].get(run.model, run.model))


def _pair_title(pair: Pair, labels: Mapping[str, Any], what: str) -> str:
    task = labels["task"].get(pair.pif.task, pair.pif.task)
    setting = labels["setting"].get(pair.pif.setting, pair.pif.setting)
    return f"{task}, {setting}: {what}"


def balanced_accuracy_figure(pair: Pair, figures: Mapping[str, Any], labels: Mapping[str, Any]):
    """Balanced accuracy per seed of both arms: box plots, the seeds as points and, where the
    seeds pair up (same split), a line joining the two arms' runs of each seed."""
    figure = new_figure(figures)
    ax = figure.add_subplot()
    arms = [pair.baseline, pair.pif]
    values = [100 * run.results["balanced_accuracy"].to_numpy(dtype=float) for run in arms]
    ax.boxplot(values, widths=0.5, showfliers=False)
    ax.set_xticks([1, 2], [_arm_label(run, labels) for run in arms])
    if pair.paired:
        merged = pair.baseline.results[["seed", "balanced_accuracy"]].merge(
            pair.pif.results[["seed", "balanced_accuracy"]], on="seed", suffixes=("_b", "_p")
        )
        for _, row in merged.iterrows():
            ax.plot([1, 2], [100 * row["balanced_accuracy_b"], 100 * row["balanced_accuracy_p"]],
                    color="0.6", lw=0.7)  # fmt: skip
    for position, arm_values in enumerate(values, start=1):
        ax.plot(np.full(len(arm_values), position), arm_values, "o", ms=4, alpha=0.8)
    ax.axhline(50, color="0.7", lw=0.8, ls="--")  # chance
    what = f"{len(pair.seeds)} paired seeds" if pair.paired else "unpaired seeds"
    if pair.paired and len(pair.seeds) >= 2:
        base = pair.baseline.results.set_index("seed").loc[list(pair.seeds), "balanced_accuracy"]
        pif = pair.pif.results.set_index("seed").loc[list(pair.seeds), "balanced_accuracy"]
        test = paired_comparison("balanced_accuracy", base, pif, pair.test_train_ratio)
        what += f"; PIF - baseline {100 * test.difference:+.1f} pp, p = {test.p_value:.2f}"
    ax.set_ylabel("balanced accuracy (%)")
    ax.set_title(_pair_title(pair, labels, what), fontsize=TITLE_SIZE)
    figure.tight_layout()
    return figure


def kaplan_meier_figure(pair: Pair, figures: Mapping[str, Any], labels: Mapping[str, Any]):
    """Share of seeds still training after each epoch, per arm; a tick where a seed reached the
    epoch cap (censored: it had not stopped early)."""
    figure = new_figure(figures, width=1.25)
    ax = figure.add_subplot()
    for run in (pair.baseline, pair.pif):
        curve = kaplan_meier(run.results)
        if curve is None:
            continue
        colour = ARM_COLOURS.get(run.model)
        times = np.concatenate([[0.0], curve.surv_times])
        survival = np.concatenate([[1.0], curve.surv_prob])
        last = float(run.results["early_stopping_epoch"].max()) + 1
        ax.step(np.append(times, last), np.append(survival, survival[-1]), where="post",
                color=colour, label=_arm_label(run, labels))  # fmt: skip
        censored = run.results["early_stopping_epoch"][~stopped_by_patience(run.results)] + 1
        ax.plot(censored, np.full(len(censored), survival[-1]), "|", color=colour, ms=10)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("epochs trained")
    ax.set_ylabel("seeds still training")
    ax.set_title(_pair_title(pair, labels, "early stopping (| capped)"), fontsize=TITLE_SIZE)
    ax.legend(fontsize=LEGEND_SIZE)
    figure.tight_layout()
    return figure


def epochs_figure(pair: Pair, figures: Mapping[str, Any], labels: Mapping[str, Any]):
    """Best and stopping epochs of every seed, per arm."""
    figure = new_figure(figures, width=1.25)
    ax = figure.add_subplot()
    positions, names = [], []
    for offset, run in enumerate((pair.baseline, pair.pif)):
        for column, kind, shift in (("best_epoch", "best", 0), ("early_stopping_epoch", "stop", 1)):
            values = run.results[column].to_numpy(dtype=float)
            where = 1 + 3 * offset + shift
            ax.boxplot([values], positions=[where], widths=0.6, showfliers=False)
            ax.plot(np.full(len(values), where), values, "o", ms=4, alpha=0.7,
                    color=ARM_COLOURS.get(run.model))  # fmt: skip
            positions.append(where)
            names.append(f"{_arm_label(run, labels)}\n{kind}")
    ax.set_xticks(positions, names, fontsize=LEGEND_SIZE)
    ax.set_ylabel("epoch")
    ax.set_title(_pair_title(pair, labels, "best and stopping epochs"), fontsize=TITLE_SIZE)
    figure.tight_layout()
    return figure


def mean_curve(run: CellRun, column: str, confidence: float) -> pd.DataFrame:
    """Per epoch: the mean over the seeds still training and the t interval of that mean
    (where at least two seeds are)."""
    curves = [rundir.read_epochs(folder)[["epoch", column]] for _, folder in run.seed_dirs()]
    if not curves:
        return pd.DataFrame(columns=["epoch", "mean", "low", "high", "seeds"])
    grouped = pd.concat(curves).groupby("epoch")[column]
    table = grouped.agg(["mean", "sem", "count"]).reset_index()
    table["low"] = table["high"] = np.nan
    several = table["count"] >= 2  # an interval needs two seeds
    spread = several & (table["sem"] > 0)
    flat = several & ~spread  # every seed the same: a point interval
    table.loc[flat, "low"] = table.loc[flat, "high"] = table.loc[flat, "mean"]
    if spread.any():
        rows = table[spread]
        low, high = stats.t.interval(
            confidence, rows["count"] - 1, loc=rows["mean"], scale=rows["sem"]
        )
        table.loc[spread, "low"], table.loc[spread, "high"] = low, high
    return table.rename(columns={"count": "seeds"})[["epoch", "mean", "low", "high", "seeds"]]


def mean_curves_figure(
    pair: Pair, figures: Mapping[str, Any], labels: Mapping[str, Any], confidence: float
):
    """Mean validation loss and balanced accuracy per epoch of both arms, with 95 % bands."""
    figure = new_figure(figures, width=2)
    for index, (column, name) in enumerate(
        (("val_loss", "validation loss"), ("val_balanced_accuracy", "validation BA"))
    ):
        ax = figure.add_subplot(1, 2, index + 1)
        for run in (pair.baseline, pair.pif):
            curve = mean_curve(run, column, confidence)
            colour = ARM_COLOURS.get(run.model)
            ax.plot(curve["epoch"], curve["mean"], color=colour, label=_arm_label(run, labels))
            ax.fill_between(curve["epoch"], curve["low"], curve["high"], color=colour, alpha=0.2,
                            lw=0)  # fmt: skip
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        # the axes keep to what the quantity can be (few seeds give t intervals beyond it)
        if column == "val_balanced_accuracy":
            ax.set_ylim(0, 1)
        else:
            ax.set_ylim(bottom=0)
        ax.legend(fontsize=LEGEND_SIZE)
    figure.suptitle(
        _pair_title(pair, labels, f"mean over seeds, {confidence:.0%} band"), fontsize=TITLE_SIZE
    )
    figure.tight_layout()
    return figure
