"""Figures of one cell: learning curves with the early-stopping point, and ROC curves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pifexp.experiments import rundir
from pifexp.experiments.report.runs import CellRun
from pifexp.experiments.report.style import LEGEND_SIZE, TITLE_SIZE, new_figure, title

DECISION_THRESHOLD = 0.5  # prediction = sigmoid >= 0.5, as in training and testing


def learning_curves_figure(run: CellRun, figures: Mapping[str, Any]):
    """Validation loss per epoch for each seed; a dot where early stopping ended training and a
    ring at the epoch of the lowest validation loss (the state tested under best_val_loss)."""
    from matplotlib.ticker import MaxNLocator

    figure = new_figure(figures, width=1.5)
    ax = figure.add_subplot()
    for seed, seed_dir in run.seed_dirs():
        epochs = rundir.read_epochs(seed_dir)
        metrics = run.results.loc[run.results["seed"] == seed].iloc[0]
        (line,) = ax.plot(epochs["epoch"], epochs["val_loss"], label=f"seed {seed}", lw=1)
        for column, style in (("early_stopping_epoch", "o"), ("best_epoch", "o")):
            at = epochs.loc[epochs["epoch"] == int(metrics[column]), "val_loss"]
            if len(at):
                filled = column == "early_stopping_epoch"
                ax.plot(int(metrics[column]), float(at.iloc[0]), style, color=line.get_color(),
                        mfc=line.get_color() if filled else "none", ms=6)  # fmt: skip
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss")
    ax.set_title(f"{title(run)}: • early stop, ○ best epoch", fontsize=TITLE_SIZE)
    if ax.lines:
        ax.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    return figure


def roc_figure(run: CellRun, figures: Mapping[str, Any]):
    """Test-set ROC curve of each seed (its tested state), with its AUC, and their mean (the
    seeds' true-positive rates averaged at common false-positive rates)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    _, height = figures["panel_size_inches"]
    figure = new_figure(figures)
    figure.set_size_inches(height * 1.25, height * 1.25)
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
    grid, curves = np.linspace(0, 1, 101), []
    for seed, seed_dir in run.seed_dirs():
        predictions = rundir.read_predictions(seed_dir)
        labels = predictions["label"].to_numpy()
        probabilities = predictions["probability"].to_numpy()
        if len(np.unique(labels)) < 2:
            continue
        fpr, tpr, _ = roc_curve(labels, probabilities)
        auc = roc_auc_score(labels, probabilities)
        (line,) = ax.plot(fpr, tpr, lw=0.8, alpha=0.6, label=f"seed {seed}: AUC {auc:.2f}")
        curves.append(np.interp(grid, fpr, tpr))
        if figures["roc_points"]:
            predicted = probabilities >= DECISION_THRESHOLD
            positive = labels == 1
            ax.plot((predicted & ~positive).sum() / max((~positive).sum(), 1),
                    (predicted & positive).sum() / max(positive.sum(), 1), "o",
                    color=line.get_color(), ms=4)  # fmt: skip
    if curves:
        ax.plot(grid, np.mean(curves, axis=0), color="black", lw=2,
                label=f"mean of {len(curves)} seeds")  # fmt: skip
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title(f"ROC, {title(run)}", fontsize=TITLE_SIZE)
    if len(ax.lines) > 1:
        ax.legend(fontsize=LEGEND_SIZE, loc="lower right")
    figure.tight_layout()
    return figure
