"""A run in words and as a row: this run's row of Table 1 (summary.csv, summary.md) and the
line said about each seed."""

from __future__ import annotations

from typing import Any

import pandas as pd

from pifexp.experiments.specs import RunSpec


def summary_row(results: pd.DataFrame, spec: RunSpec, source: dict[str, Any]) -> pd.DataFrame:
    """This run's row of Table 1: mean and std over seeds, and where the data came from."""
    row = {
        "task": spec.task,
        "model": spec.model,
        "architecture": spec.architecture,
        "protocol": spec.protocol,
        "subset": spec.subset,
        "subset_unit": spec.split.subset_unit,  # subject | image
        "subset_scope": spec.split.subset_scope,  # train | cohort
        "subset_subjects": spec.split.train_subjects,  # data.train_subjects (None: not set)
        "seeds": len(results),
        "fixed_split_seed": spec.split.fixed_seed,  # None: a split per repeat
    }
    for column in ("balanced_accuracy", "early_stopping_epoch", "roc_auc"):
        row[f"{column}_mean"] = results[column].mean()
        row[f"{column}_std"] = results[column].std(ddof=1) if len(results) > 1 else float("nan")
    if "stopped_early" in results:
        row["stopped_by_cap"] = int((~results["stopped_early"].astype(bool)).sum())
    for column in ("train_subjects", "train_images"):  # distinct, per seed
        values = results[column] if column in results else pd.Series(dtype=float)
        row[f"{column}_min"], row[f"{column}_max"] = values.min(), values.max()
    row["data_source"] = source["text"]
    row["manifest_sha256"] = source["sha256"]
    return pd.DataFrame([row])


def summary_markdown(summary: pd.DataFrame) -> str:
    row = summary.iloc[0]
    fixed_seed = row.get("fixed_split_seed")
    split_line = (
        [
            f"**One split for every repeat** (drawn with seed {int(fixed_seed)}, "
            "task.split.fixed_seed), as in the 2019 runs: the seeds differ only in initialisation "
            "and batch order, so their spread leaves out the variation between splits."
        ]
        if pd.notna(fixed_seed)
        else []
    )
    return "\n".join(
        [
            f"# {row.task} / {row.architecture} ({row.model}), protocol {row.protocol}",
            "",
            f"Data: {row.data_source}.",
            f"{_subset_words(row)}; seeds: {row.seeds}.",
            *_training_set_line(row),
            *split_line,
            "",
            "| Bal. acc. (%) | Early stopping epoch | ROC AUC |",
            "| --- | --- | --- |",
            f"| {_mean_sd(row, 'balanced_accuracy', 2, 100)} "
            f"| {_mean_sd(row, 'early_stopping_epoch', 1)} | {_mean_sd(row, 'roc_auc', 3)} |",
            "",
            "Mean ± standard deviation over seeds (one seed: its value alone)."
            if row.seeds < 2
            else "Mean ± standard deviation over seeds.",
            *_cap_line(row),
            "",
        ]
    )


def _subset_words(row: pd.Series) -> str:
    """What the subset kept, in the units and from the pool it was drawn from."""
    unit, scope = row.get("subset_unit", "subject"), row.get("subset_scope", "train")
    kept = row.get("subset_subjects")
    if kept is not None and pd.notna(kept):
        return f"Training subjects used: {int(kept)} of each split's (data.train_subjects)"
    if row.subset >= 1 or pd.isna(unit):
        return f"Training subjects used: {row.subset:.0%}"
    if unit == "image":
        return f"Training images used: {row.subset:.0%} (drawn by image)"
    if scope == "cohort":
        return (
            f"Subjects used: {row.subset:.0%} of the cohort, drawn before the test split "
            "(validation and test shrink too)"
        )
    return f"Training subjects used: {row.subset:.0%}"


def _training_set_line(row: pd.Series) -> list[str]:
    """The distinct training subjects and images per seed (a range where seeds differ)."""
    if pd.isna(row.get("train_subjects_min")):
        return []

    def span(column: str) -> str:
        low, high = int(row[f"{column}_min"]), int(row[f"{column}_max"])
        return f"{low}" if low == high else f"{low}-{high}"

    return [
        f"Per seed: {span('train_subjects')} distinct training subjects, "
        f"{span('train_images')} training images."
    ]


def _cap_line(row: pd.Series) -> list[str]:
    """Seeds that the epoch cap ended: their early-stopping epoch is the cap, not a stop."""
    capped = row.get("stopped_by_cap")
    if capped is None or pd.isna(capped) or int(capped) == 0:
        return []
    return [
        f"{int(capped)} of {row.seeds} seeds reached the epoch cap without stopping early: their "
        "early-stopping epoch is the cap's."
    ]


def _mean_sd(row: pd.Series, metric: str, decimals: int, scale: float = 1.0) -> str:
    """mean ± sd, or the mean alone where one seed has no spread to show."""
    mean, sd = row[f"{metric}_mean"] * scale, row[f"{metric}_std"] * scale
    return f"{mean:.{decimals}f}" if pd.isna(sd) else f"{mean:.{decimals}f} ± {sd:.{decimals}f}"


def seed_line(metrics: dict[str, Any]) -> str:
    """One seed's result in words; says whether early stopping or the epoch cap ended it."""
    stop = int(metrics["early_stopping_epoch"])
    ended = (
        f"early stopping at epoch {stop}"
        if metrics["stopped_early"]
        else f"reached the epoch cap at epoch {stop} without stopping early"
    )
    return (
        f"seed {metrics['seed']}: balanced accuracy {metrics['balanced_accuracy']:.3f}, ROC AUC "
        f"{metrics['roc_auc']:.3f}, {ended} (best epoch {metrics['best_epoch']})"
    )
