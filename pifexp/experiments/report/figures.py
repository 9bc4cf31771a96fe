"""Every figure of a report, written into one folder: per cell (learning curves, ROC), per
baseline-PIF pair (balanced accuracy per seed, Kaplan-Meier curves of early stopping, best and
stopping epochs, mean validation curves with bands) and per task (the PIF patch grid)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pifexp.experiments.report.cell_figures import learning_curves_figure, roc_figure
from pifexp.experiments.report.pair_figures import (
    balanced_accuracy_figure,
    epochs_figure,
    kaplan_meier_figure,
    mean_curves_figure,
)
from pifexp.experiments.report.patch_grid import has_pif_network, patch_grid_figure
from pifexp.experiments.report.runs import CellRun
from pifexp.experiments.report.style import FIGURES_DIR, save, style
from pifexp.experiments.report.tables import pairs

__all__ = ["FIGURES_DIR", "write_figures"]


def write_figures(
    runs: Sequence[CellRun], folder: Path, reporting: Mapping[str, Any]
) -> list[Path]:
    """Every figure for these runs, into `folder`, in the report's one style; returns the files
    written."""
    with style():
        return _write_all(runs, folder, reporting)


def _write_all(
    runs: Sequence[CellRun], folder: Path, reporting: Mapping[str, Any]
) -> list[Path]:
    figures = reporting["figures"]
    labels = reporting["labels"]
    suffix = f".{figures['format']}"
    confidence = float(reporting["statistics"]["confidence"])
    written = []
    for run in runs:
        if run.results.empty:
            continue  # a failed or unstarted cell has nothing to draw
        written.append(save(learning_curves_figure(run, figures),
                            folder / f"learning-curves-{run.name}{suffix}", figures))  # fmt: skip
        written.append(save(roc_figure(run, figures), folder / f"roc-{run.name}{suffix}", figures))
    for (task, setting), pair in sorted(pairs(runs).items()):
        if pair.baseline.results.empty or pair.pif.results.empty:
            continue
        for name, figure in (
            ("balanced-accuracy", balanced_accuracy_figure(pair, figures, labels)),
            ("early-stopping-km", kaplan_meier_figure(pair, figures, labels)),
            ("epochs", epochs_figure(pair, figures, labels)),
            ("mean-curves", mean_curves_figure(pair, figures, labels, confidence)),
        ):
            written.append(save(figure, folder / f"{name}-{task}-{setting}{suffix}", figures))
    drawn_tasks = set()
    for run in runs:
        if run.model != "pif" or run.task in drawn_tasks or not has_pif_network(run):
            continue
        drawn_tasks.add(run.task)
        figure = patch_grid_figure(run, figures, str(labels["task"].get(run.task, run.task)))
        written.append(save(figure, folder / f"pif-patch-grid-{run.task}{suffix}", figures))
    return written
