"""The interpretation's tables: one row per image map (images.csv), one row per run, seed, method
and weights (interpretation.csv), and the Markdown summary: scores of trained against random
weights per arm, the model randomisation check, and PIF against the baseline, paired by seed
where the runs' seeds shared their splits (pifexp.experiments.report.statistics)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pifexp.experiments.apply.attribution import METHODS
from pifexp.experiments.apply.means import RANDOM, TRAINED
from pifexp.experiments.report.runs import load_run
from pifexp.experiments.report.statistics import (
    adjust_p_values,
    paired_comparison,
    unpaired_comparison,
)

SCORES = ("auc", "mass_inside")
KEYS = ["cell", "task", "setting", "model", "seed", "method", "weights"]
TABLE_COLUMNS = [*KEYS, "images", "auc", "mass_inside", "signal_share", "spearman_trained_random",
                 "randomisation_flag", "run_dir"]  # fmt: skip


@dataclass(frozen=True)
class ScoredRun:
    """One run's scores as the tables need them."""

    label: str
    run_dir: Path
    task: str
    setting: str
    model: str
    data_source: str
    scores: pd.DataFrame  # scores.csv of every seed and method: one row per image and weights
    signal_share: float  # the signal's share of the brain's voxels (NaN: no effect map)


def seed_table(runs: Sequence[ScoredRun], threshold: float) -> pd.DataFrame:
    """interpretation.csv: per run, seed, method and weights, the mean over images; a method whose
    trained and random maps rank the voxels alike (mean Spearman above `threshold`) is flagged."""
    frames = []
    for run in runs:
        grouped = run.scores.groupby(["seed", "method", "weights"], sort=False)
        table = grouped.agg(
            images=("name", "size"),
            auc=("auc", "mean"),
            mass_inside=("mass_inside", "mean"),
            spearman_trained_random=("spearman_trained_random", "mean"),
        ).reset_index()
        table = table.assign(
            cell=run.label, task=run.task, setting=run.setting, model=run.model,
            signal_share=run.signal_share, run_dir=str(run.run_dir),
            randomisation_flag=table["spearman_trained_random"] > threshold,
        )  # fmt: skip
        frames.append(table)
    table = pd.concat(frames, ignore_index=True)[TABLE_COLUMNS]
    order = {name: i for i, name in enumerate(METHODS)}
    return table.sort_values(
        ["cell", "method", "seed", "weights"],
        key=lambda column: column.map(order) if column.name == "method" else column,
        kind="stable",
    ).reset_index(drop=True)


def summary_markdown(table: pd.DataFrame, runs: Sequence[ScoredRun], threshold: float) -> str:
    scored = table["auc"].notna().any()
    lines = ["# Attribution maps", ""]
    for source in dict.fromkeys(run.data_source for run in runs):
        lines.append(f"Data: {source}.")
    lines += [
        "",
        "Maps of the logit (class 1 against class 0) for each seed's test images, under the "
        "trained weights and under re-initialised ones (model randomisation, Adebayo et al. "
        "2018). Mean ± SD over seeds of the per-seed means over images.",
        "",
    ]
    if scored:
        lines += [
            "Scored against the cohort's effect map (effect_map.nii.gz): AUC is the voxelwise ROC "
            "AUC of |attribution| against the signal (|effect| above its threshold, within the "
            "MNI152 brain; 0.5 is chance); mass is the share of the |attribution| inside the "
            "signal (chance: the signal's share of the brain, given in brackets).",
            "",
        ]
    else:
        lines += ["No effect map for these images: the maps are not scored against a signal.", ""]
    lines += _arm_table(table, scored)
    lines += _flags(table, threshold)
    lines += _comparisons(table, runs) if scored else []
    return "\n".join(lines) + "\n"


def _arm_table(table: pd.DataFrame, scored: bool) -> list[str]:
    header = "| Cell | Method | Seeds | Spearman trained vs random |"
    if scored:
        header = ("| Cell | Method | Seeds | AUC trained | AUC random | Mass trained | "
                  "Mass random | Spearman trained vs random |")  # fmt: skip
    lines = [header, "|" + " --- |" * (header.count("|") - 1)]
    for (cell, method), rows in table.groupby(["cell", "method"], sort=False):
        trained, random = rows[rows.weights == TRAINED], rows[rows.weights == RANDOM]
        cells = [cell, METHODS[method], str(len(trained))]
        if scored:
            chance = f" [{trained['signal_share'].iloc[0]:.3f}]"
            cells += [
                _spread(trained.auc),
                _spread(random.auc),
                _spread(trained.mass_inside) + chance,
                _spread(random.mass_inside),
            ]
        cells.append(_spread(trained.spearman_trained_random))
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _flags(table: pd.DataFrame, threshold: float) -> list[str]:
    trained = table[table.weights == TRAINED]
    flagged = trained.groupby(["cell", "method"], sort=False)["randomisation_flag"].mean()
    flagged = flagged[flagged > 0]
    if flagged.empty:
        return [
            f"Model randomisation: every method's maps changed when the weights were "
            f"re-initialised (Spearman of trained vs random |maps| at most {threshold} in every "
            "seed).",
            "",
        ]
    lines = [
        f"**Model randomisation flags** (Spearman of trained vs random |maps| above {threshold}: "
        "the maps change little when the network's weights are replaced by random ones, so they "
        "show the image more than what the network learned):",
    ]
    for (cell, method), share in flagged.items():
        lines.append(f"- {cell}, {METHODS[method]}: flagged in {share:.0%} of the seeds")
    return [*lines, ""]


def _comparisons(table: pd.DataFrame, runs: Sequence[ScoredRun]) -> list[str]:
    """PIF minus baseline on the trained weights' scores, per task, setting and method, with the
    p-values Holm-adjusted across the table's comparisons."""
    found = []  # (the row's first cells, paired, the comparison)
    for (task, setting), members in _by_cell(runs).items():
        arms = {run.model: run for run in members}
        if not {"baseline", "pif"} <= set(arms):
            continue
        base, pif = arms["baseline"], arms["pif"]
        paired, ratio = _shared_splits(base.run_dir, pif.run_dir)
        trained = table[table.weights == TRAINED]
        for method in METHODS:
            a = trained[(trained.cell == base.label) & (trained.method == method)]
            b = trained[(trained.cell == pif.label) & (trained.method == method)]
            seeds = sorted(set(a.seed) & set(b.seed)) if paired else []
            if a.empty or b.empty:
                continue
            for score in SCORES:
                if paired:
                    x = a.set_index("seed").loc[seeds, score]
                    y = b.set_index("seed").loc[seeds, score]
                    comparison = paired_comparison(score, x.to_numpy(), y.to_numpy(), ratio)
                else:
                    comparison = unpaired_comparison(score, a[score], b[score])
                found.append(([task, setting, METHODS[method], score], paired, comparison))
    if not found:
        return []
    adjusted = adjust_p_values([comparison.p_value for _, _, comparison in found])
    lines = [
        "## PIF vs baseline (trained weights)",
        "",
        "| Task | Setting | Method | Score | Seeds | Paired | PIF - baseline | 95% interval | p "
        "| p adj. |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (first, paired, comparison), p_adjusted in zip(found, adjusted, strict=True):
        lines.append(
            f"| {' | '.join(first)} | {comparison.n} | {'yes' if paired else 'no'} | "
            f"{comparison.difference:+.3f} | {_interval(comparison.ci_low, comparison.ci_high)} "
            f"| {_p(comparison.p_value)} | {_p(p_adjusted)} |"
        )
    return [
        *lines,
        "",
        "Paired: seed k of both arms had the same split (corrected resampled t-test, Nadeau and "
        f"Bengio 2003); otherwise Welch's t-test. p adj.: Holm-adjusted across the {len(found)} "
        "comparisons of this table.",
        "",
    ]


def _by_cell(runs: Sequence[ScoredRun]) -> dict[tuple[str, str], list[ScoredRun]]:
    cells: dict[tuple[str, str], list[ScoredRun]] = {}
    for run in runs:
        cells.setdefault((run.task, run.setting), []).append(run)
    return cells


def _shared_splits(first: Path, second: Path) -> tuple[bool, float]:
    """Whether every common seed of the two runs had the same split, and n_test / n_train."""
    a, b = load_run(first), load_run(second)
    hashes_a, hashes_b = a.split_hashes(), b.split_hashes()
    common = set(hashes_a) & set(hashes_b)
    paired = bool(common) and all(
        hashes_a[seed] is not None and hashes_a[seed] == hashes_b[seed] for seed in common
    )
    return paired, a.test_train_ratio


def _spread(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "—"
    if len(values) == 1:
        return f"{values.iloc[0]:.3f}"
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"


def _interval(low: float, high: float) -> str:
    return "—" if math.isnan(low) else f"[{low:+.3f}, {high:+.3f}]"


def _p(value: float) -> str:
    return "—" if value is None or np.isnan(value) else f"{value:.3f}"
