"""Convergence of a cell's seeds: when training stopped and why, how far the best epoch was, and
early stopping compared between arms with the seeds that hit the epoch cap treated as censored
(they would have stopped later, at an unknown epoch)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from pifexp.experiments import rundir
from pifexp.experiments.report.runs import CellRun


def stopped_by_patience(results: pd.DataFrame) -> np.ndarray:
    """True for seeds that early stopping ended, False for those the epoch cap ended."""
    if "stopped_early" not in results:
        return np.ones(len(results), dtype=bool)
    return results["stopped_early"].astype(str).str.lower().isin(["true", "1"]).to_numpy()


def epochs_to_stop(results: pd.DataFrame) -> np.ndarray:
    """Epochs trained until the stop (early-stopping epoch + 1, epochs counted from 0)."""
    return results["early_stopping_epoch"].to_numpy(dtype=float) + 1


def convergence_columns(run: CellRun) -> dict[str, Any]:
    """Per cell: best and stopping epochs, seeds ended by the cap, and the optimizer steps and
    wall time to the best epoch (runs of earlier versions did not record the last two)."""
    results = run.results
    capped = int((~stopped_by_patience(results)).sum())
    to_best = _to_best_epoch(run)
    return {
        "best_epoch_mean": _mean(results.get("best_epoch")),
        "best_epoch_std": _std(results.get("best_epoch")),
        "stopped_by_cap": capped,
        "stopped_by_cap_fraction": capped / len(results) if len(results) else math.nan,
        "steps_to_best_mean": _mean(to_best.get("steps")),
        "seconds_to_best_mean": _mean(to_best.get("seconds")),
    }


def _to_best_epoch(run: CellRun) -> pd.DataFrame:
    rows = []
    best = run.results.set_index("seed")["best_epoch"] if len(run.results) else pd.Series()
    for seed, folder in run.seed_dirs():
        epochs = rundir.read_epochs(folder)
        at = epochs[epochs["epoch"] == int(best[seed])]
        if len(at) and {"steps", "seconds"} <= set(epochs.columns):
            rows.append(at[["steps", "seconds"]].iloc[0])
    return pd.DataFrame(rows)


def kaplan_meier(results: pd.DataFrame) -> SurvfuncRight | None:
    """Share of seeds still training after each number of epochs; cap-ended seeds censored."""
    if results.empty:
        return None
    return SurvfuncRight(epochs_to_stop(results), stopped_by_patience(results).astype(int))


def logrank_p_value(baseline: pd.DataFrame, pif: pd.DataFrame) -> float:
    """Log-rank test of epochs-to-early-stop between the arms, cap-ended seeds censored."""
    if baseline.empty or pif.empty:
        return math.nan
    events = np.concatenate([stopped_by_patience(baseline), stopped_by_patience(pif)])
    if not events.any():
        return math.nan
    times = np.concatenate([epochs_to_stop(baseline), epochs_to_stop(pif)])
    groups = np.repeat([0, 1], [len(baseline), len(pif)])
    _, p = survdiff(times, events.astype(int), groups)
    return float(p)


def _mean(values: Any) -> float:
    return float(pd.Series(values, dtype=float).mean()) if values is not None else math.nan


def _std(values: Any) -> float:
    series = pd.Series(values, dtype=float) if values is not None else pd.Series(dtype=float)
    return float(series.std(ddof=1)) if len(series) > 1 else math.nan
