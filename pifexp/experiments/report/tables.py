"""table1.csv's table: one row per cell, ours beside the paper's numbers, with the paired tests."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from pifexp.experiments.report.runs import METRICS, CellRun
from pifexp.experiments.report.statistics import TESTS, paired_tests

PAIR_MODELS = ("baseline", "pif")


def _order_key(run: CellRun, order: Mapping[str, Sequence[str]]) -> tuple:
    def position(kind: str, value: str) -> tuple[int, str]:
        values = list(order.get(kind, []))
        return (values.index(value), "") if value in values else (len(values), value)

    return (
        position("task", run.task),
        position("setting", run.setting),
        position("model", run.model),
    )


def pairs(runs: Sequence[CellRun]) -> dict[tuple[str, str], dict[str, CellRun]]:
    """Baseline and PIF runs of the same task and setting, keyed by (task, setting)."""
    by_arm: dict[tuple[str, str], dict[str, CellRun]] = {}
    for run in runs:
        by_arm.setdefault((run.task, run.setting), {})[run.model] = run
    return {key: arms for key, arms in by_arm.items() if all(m in arms for m in PAIR_MODELS)}


def cell_table(
    runs: Sequence[CellRun], paper: Mapping[str, Any], reporting: Mapping[str, Any]
) -> pd.DataFrame:
    """table1.csv: one row per cell in the configured order. Balanced accuracy as a fraction, as
    in results.csv; the paper's numbers beside ours in `paper_*` columns; the pair's p-values on
    both cells of a task and setting."""
    ordered = sorted(runs, key=lambda run: _order_key(run, reporting["order"]))
    paired = pairs(ordered)
    rows = []
    for run in ordered:
        row: dict[str, Any] = {
            "cell": run.name,
            "task": run.task,
            "model": run.model,
            "setting": run.setting,
            "subset": run.subset,
            "architecture": run.setting_value("model", "architecture"),
            "protocol": run.setting_value("protocol", "name"),
            "profile": run.setting_value("profile", "name"),
            "status": run.status,
            "seeds": len(run.results),
            "seeds_planned": len(run.seeds_planned),
        }
        for metric in METRICS:
            values = run.results[metric].astype(float)
            row[f"{metric}_mean"] = values.mean() if len(values) else math.nan
            row[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else math.nan
        row.update(_paper_columns((paper.get("cells") or {}).get(run.name) or {}))
        row.update(_test_columns(run, paired.get((run.task, run.setting)), reporting))
        row["train_seconds"] = float(run.results["seconds"].sum()) if len(run.results) else 0.0
        row["data_source"] = run.data_source
        rows.append(row)
    return pd.DataFrame(rows)


def _paper_columns(published: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "paper_architecture": published.get("architecture"),
        "paper_balanced_accuracy": (
            float(published["balanced_accuracy"]) / 100
            if "balanced_accuracy" in published
            else math.nan
        ),
        "paper_early_stopping_epoch": float(published.get("early_stopping_epoch", math.nan)),
    }


def _test_columns(
    run: CellRun, pair: Mapping[str, CellRun] | None, reporting: Mapping[str, Any]
) -> dict[str, Any]:
    statistics = reporting["statistics"]
    metrics = list(statistics["metrics"])
    tests = (
        paired_tests(pair["baseline"].results, pair["pif"].results, metrics,
                     statistics["alternative"], statistics["wilcoxon_zero_method"])
        if pair and run.model in PAIR_MODELS else {}
    )  # fmt: skip
    columns: dict[str, Any] = {"paired_seeds": tests.get("paired_seeds", math.nan)}
    for metric in metrics:
        columns[f"{metric}_paired_difference"] = tests.get(f"{metric}_difference", math.nan)
        for test in TESTS:
            columns[f"{metric}_{test}_p_value"] = tests.get(f"{metric}_{test}_p_value", math.nan)
    return columns


def table_csv(table: pd.DataFrame, reporting: Mapping[str, Any]) -> str:
    digits = int(reporting["decimals"]["csv_significant_digits"])
    return table.to_csv(index=False, float_format=f"%.{digits}g", lineterminator="\n")
