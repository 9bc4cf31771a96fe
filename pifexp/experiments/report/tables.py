"""The report's tables as data: one row per cell (table1.csv), per comparison of PIF with the
baseline (comparisons.csv) and per seed (seeds.csv)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pifexp.experiments import rundir
from pifexp.experiments.report.bootstrap import seed_interval
from pifexp.experiments.report.convergence import (
    convergence_columns,
    logrank_p_value,
    stopped_by_patience,
)
from pifexp.experiments.report.runs import METRICS, CellRun
from pifexp.experiments.report.statistics import (
    LEGACY_TESTS,
    adjust_p_values,
    mean_interval,
    minimum_detectable_difference,
    paired_comparison,
    paired_tests,
    seeds_needed,
    unpaired_comparison,
)

PAIR_MODELS = ("baseline", "pif")


@dataclass(frozen=True)
class Pair:
    """The baseline and PIF runs of one task and setting, and whether their seeds pair up."""

    baseline: CellRun
    pif: CellRun
    seeds: tuple[int, ...]  # seeds that both arms finished
    paired: bool  # every common seed had the same split in both arms
    reason: str  # why the comparison is unpaired ("" when paired)

    @property
    def test_train_ratio(self) -> float:
        return (self.baseline.test_train_ratio + self.pif.test_train_ratio) / 2


def pair_runs(baseline: CellRun, pif: CellRun) -> Pair:
    """Seeds pair up only where both arms recorded the same split for them."""
    seeds = tuple(sorted(set(baseline.results["seed"]) & set(pif.results["seed"])))
    first, second = baseline.split_hashes(), pif.split_hashes()
    missing = [s for s in seeds if first.get(s) is None or second.get(s) is None]
    differing = [s for s in seeds if first.get(s) != second.get(s)]
    reason = ""
    if not seeds:
        reason = "no seed finished in both arms"
    elif missing:
        reason = "splits not recorded (split.json)"
    elif differing:
        reason = f"the arms' splits differ (seeds {', '.join(map(str, differing[:3]))})"
    return Pair(baseline, pif, seeds, not reason, reason)


def pairs(runs: Sequence[CellRun]) -> dict[tuple[str, str], Pair]:
    """The baseline and PIF runs of each task and setting, keyed by (task, setting)."""
    by_arm: dict[tuple[str, str], dict[str, CellRun]] = {}
    for run in runs:
        by_arm.setdefault((run.task, run.setting), {})[run.model] = run
    return {
        key: pair_runs(arms["baseline"], arms["pif"])
        for key, arms in by_arm.items()
        if all(model in arms for model in PAIR_MODELS)
    }


def _order_key(run: CellRun, order: Mapping[str, Sequence[str]]) -> tuple:
    def position(kind: str, value: str) -> tuple[int, str]:
        values = list(order.get(kind, []))
        return (values.index(value), "") if value in values else (len(values), value)

    return (
        position("task", run.task),
        position("setting", run.setting),
        position("model", run.model),
    )


def ordered(runs: Sequence[CellRun], reporting: Mapping[str, Any]) -> list[CellRun]:
    return sorted(runs, key=lambda run: _order_key(run, reporting["order"]))


def cell_table(
    runs: Sequence[CellRun],
    paper: Mapping[str, Any],
    reporting: Mapping[str, Any],
    seeds: pd.DataFrame,
) -> pd.DataFrame:
    """table1.csv: one row per cell in the configured order. Balanced accuracy as a fraction, as
    in results.csv; the paper's numbers beside ours in `paper_*` columns; the plain paired tests
    of earlier versions on both cells of a pair; then intervals, convergence and pairing."""
    paired = pairs(runs)
    confidence = float(reporting["statistics"]["confidence"])
    rows = []
    for run in ordered(runs, reporting):
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
        pair = paired.get((run.task, run.setting))
        row.update(_legacy_test_columns(run, pair, reporting))
        row["train_seconds"] = float(run.results["seconds"].sum()) if len(run.results) else 0.0
        row.update(_training_set_columns(run))
        row["data_source"] = run.data_source
        for metric in ("balanced_accuracy", "roc_auc"):
            low, high = mean_interval(run.results[metric], run.test_train_ratio, confidence)
            row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = low, high
        row["test_train_ratio"] = run.test_train_ratio
        row.update(_seed_interval_columns(seeds[seeds["cell"] == run.name]))
        row.update(convergence_columns(run))
        row["pairing"] = "" if pair is None else ("paired" if pair.paired else "unpaired")
        rows.append(row)
    return pd.DataFrame(rows)


def _training_set_columns(run: CellRun) -> dict[str, Any]:
    """How the subset was drawn and the distinct training subjects and images per seed (the
    range over seeds; NaN for run folders that did not record them)."""
    columns: dict[str, Any] = {
        "subset_unit": run.setting_value("data", "subset_unit") or "subject",
        "subset_scope": run.setting_value("data", "subset_scope") or "train",
    }
    for column in ("train_subjects", "train_images"):
        values = run.results[column] if column in run.results else pd.Series(dtype=float)
        columns[f"{column}_min"], columns[f"{column}_max"] = values.min(), values.max()
    return columns


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


def _legacy_test_columns(
    run: CellRun, pair: Pair | None, reporting: Mapping[str, Any]
) -> dict[str, Any]:
    statistics = reporting["statistics"]
    metrics = list(statistics["metrics"])
    tests = (
        paired_tests(pair.baseline.results, pair.pif.results, metrics,
                     statistics["alternative"], statistics["wilcoxon_zero_method"])
        if pair is not None and pair.paired and run.model in PAIR_MODELS else {}
    )  # fmt: skip
    columns: dict[str, Any] = {"paired_seeds": tests.get("paired_seeds", math.nan)}
    for metric in metrics:
        columns[f"{metric}_paired_difference"] = tests.get(f"{metric}_difference", math.nan)
        for test in LEGACY_TESTS:
            columns[f"{metric}_{test}_p_value"] = tests.get(f"{metric}_{test}_p_value", math.nan)
    return columns


def _seed_interval_columns(seeds: pd.DataFrame) -> dict[str, Any]:
    """How wide one seed's test-set interval of balanced accuracy is, on average."""
    width = (seeds["balanced_accuracy_ci_high"] - seeds["balanced_accuracy_ci_low"]).mean()
    return {
        "seed_balanced_accuracy_ci_width": float(width) if len(seeds) else math.nan,
        "seed_intervals_by_subject": bool(seeds["by_subject"].all()) if len(seeds) else False,
    }


def seed_table(runs: Sequence[CellRun], reporting: Mapping[str, Any]) -> pd.DataFrame:
    """seeds.csv: per seed its test metrics with bootstrap intervals over its test subjects, its
    split's digest and whether early stopping (not the cap) ended it."""
    statistics = reporting["statistics"]
    rows = []
    for run in ordered(runs, reporting):
        hashes = run.split_hashes()
        patience = dict(zip(run.results["seed"], stopped_by_patience(run.results), strict=True))
        for seed, folder in run.seed_dirs():
            metrics = run.results.set_index("seed").loc[seed]
            interval = seed_interval(
                rundir.read_predictions(folder),
                float(statistics["confidence"]),
                int(statistics["bootstrap_resamples"]),
                int(statistics["bootstrap_seed"]),
            )
            rows.append({
                "cell": run.name, "seed": seed,
                "balanced_accuracy": metrics["balanced_accuracy"],
                "balanced_accuracy_ci_low": interval.balanced_accuracy[0],
                "balanced_accuracy_ci_high": interval.balanced_accuracy[1],
                "roc_auc": metrics["roc_auc"],
                "roc_auc_ci_low": interval.roc_auc[0], "roc_auc_ci_high": interval.roc_auc[1],
                "by_subject": interval.clustered,
                "early_stopping_epoch": metrics["early_stopping_epoch"],
                "stopped_early": bool(patience[seed]),
                "split_sha256": hashes.get(seed),
            })  # fmt: skip
    columns = ["cell", "seed", "balanced_accuracy", "balanced_accuracy_ci_low",
               "balanced_accuracy_ci_high", "roc_auc", "roc_auc_ci_low", "roc_auc_ci_high",
               "by_subject", "early_stopping_epoch", "stopped_early", "split_sha256"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def comparison_table(runs: Sequence[CellRun], reporting: Mapping[str, Any]) -> pd.DataFrame:
    """comparisons.csv: PIF minus baseline per task, setting and metric, with the primary
    endpoint's p-values adjusted across the table's comparisons."""
    statistics = reporting["statistics"]
    rows = []
    for pair in sorted(pairs(runs).values(), key=lambda p: _order_key(p.pif, reporting["order"])):
        for metric in statistics["metrics"]:
            rows.append(_comparison_row(pair, str(metric), statistics))
    return with_adjusted_p_values(pd.DataFrame(rows, columns=COMPARISON_COLUMNS), statistics)


def with_adjusted_p_values(table: pd.DataFrame, statistics: Mapping[str, Any]) -> pd.DataFrame:
    """The table with p_value_adjusted: the primary metric's p-values adjusted across its rows
    (statistics.adjustment), and the method's name in `adjustment` on those rows."""
    primary = table["metric"] == statistics["primary_metric"]
    table["p_value_adjusted"] = math.nan
    if primary.any():
        table.loc[primary, "p_value_adjusted"] = adjust_p_values(
            table.loc[primary, "p_value"].tolist(), str(statistics["adjustment"])
        )
    table["adjustment"] = [str(statistics["adjustment"]) if p else "" for p in primary]
    return table


COMPARISON_COLUMNS = [
    "task", "setting", "metric", "pairing", "unpaired_because", "seeds", "baseline_mean",
    "pif_mean", "difference", "ci_low", "ci_high", "effect_size", "effect_size_kind",
    "hodges_lehmann", "primary_test", "p_value", "secondary_test", "secondary_p_value",
    "difference_sd", "test_train_ratio", "minimum_detectable_difference",
    "target_difference", "seeds_for_target", "logrank_p_value", "baseline_stopped_by_cap",
    "pif_stopped_by_cap",
]  # fmt: skip


def _comparison_row(pair: Pair, metric: str, statistics: Mapping[str, Any]) -> dict[str, Any]:
    confidence = float(statistics["confidence"])
    alpha, power = float(statistics["alpha"]), float(statistics["power"])
    base, pif = pair.baseline.results, pair.pif.results
    if pair.paired:
        aligned = base.set_index("seed").loc[list(pair.seeds), metric].astype(float)
        other = pif.set_index("seed").loc[list(pair.seeds), metric].astype(float)
        result = paired_comparison(metric, aligned, other, pair.test_train_ratio, confidence)
    else:
        result = unpaired_comparison(metric, base[metric], pif[metric], confidence)
    target = float(statistics["target_difference"]) if metric == "balanced_accuracy" else math.nan
    cap_base, cap_pif = (int((~stopped_by_patience(r)).sum()) for r in (base, pif))
    return {
        "task": pair.pif.task, "setting": pair.pif.setting, "metric": metric,
        "pairing": "paired" if pair.paired else "unpaired", "unpaired_because": pair.reason,
        "seeds": result.n, "baseline_mean": base[metric].astype(float).mean(),
        "pif_mean": pif[metric].astype(float).mean(), "difference": result.difference,
        "ci_low": result.ci_low, "ci_high": result.ci_high, "effect_size": result.effect_size,
        "effect_size_kind": "d_z" if result.paired else "d",
        "hodges_lehmann": result.hodges_lehmann, "primary_test": result.tests[0],
        "p_value": result.p_value, "secondary_test": result.tests[1],
        "secondary_p_value": result.secondary_p_value, "difference_sd": result.difference_sd,
        "test_train_ratio": result.test_train_ratio,
        "minimum_detectable_difference": minimum_detectable_difference(
            result.difference_sd, result.n, result.test_train_ratio, alpha, power),
        "target_difference": target,
        "seeds_for_target": seeds_needed(
            target, result.difference_sd, result.test_train_ratio, alpha, power),
        "logrank_p_value": (
            logrank_p_value(base, pif) if metric == "early_stopping_epoch" else math.nan),
        "baseline_stopped_by_cap": cap_base, "pif_stopped_by_cap": cap_pif,
    }  # fmt: skip


def table_csv(table: pd.DataFrame, reporting: Mapping[str, Any]) -> str:
    digits = int(reporting["decimals"]["csv_significant_digits"])
    return table.to_csv(index=False, float_format=f"%.{digits}g", lineterminator="\n")
