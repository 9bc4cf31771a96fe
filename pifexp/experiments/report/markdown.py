"""table1.md: the paper's layout with intervals, PIF against the baseline (primary endpoint,
adjusted p, effect sizes, power), early stopping with censoring, the cells, and the notes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

import pifexp.experiments.report.text as text
from pifexp.experiments.report.statistics import MOST_SEEDS


def table_markdown(
    table: pd.DataFrame,
    comparisons: pd.DataFrame,
    paper: Mapping[str, Any],
    reporting: Mapping[str, Any],
    synthetic: bool,
) -> str:
    """table1.md, section by section."""
    marks = text.cell_marks(table)
    lines = ["# Table 1: baseline vs PIF, balanced accuracy and early-stopping epoch", ""]
    lines += _headline_lines(text.headline(table, paper, synthetic))
    lines += _main_table(table, reporting, marks)
    lines += _comparison_section(comparisons, reporting)
    lines += _stopping_section(table, comparisons, reporting)
    lines += _cells_table(table, reporting, marks)
    notes = [f"{mark} {cell}: {text.status_of(table, cell)}" for cell, mark in marks.items()]
    notes += text.paper_notes(paper, set(table["task"]))
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _headline_lines(headline: Mapping[str, Any]) -> list[str]:
    lines = [f"**{headline['warning']}**", ""] if headline["warning"] else []
    lines += ["Data of our cells (pifexp):", ""]
    lines += [f"- {source}" for source in headline["sources"]]
    return lines + ["", f"Paper: {headline['paper']}", ""]


def _decimals(reporting: Mapping[str, Any], key: str) -> int:
    return int(reporting["decimals"][key])


def _main_table(
    table: pd.DataFrame, reporting: Mapping[str, Any], marks: Mapping[str, str]
) -> list[str]:
    ba, es = _decimals(reporting, "balanced_accuracy"), _decimals(reporting, "early_stopping_epoch")
    grid = text.layout(table, reporting["order"])
    header = ["Data", "Model"]
    for setting in grid.settings:
        name = text.label(reporting, "setting", setting)
        header += [f"{name}: BA % (ours)", f"{name}: BA 95% CI", f"{name}: BA % (paper)",
                   f"{name}: ES epoch (ours)", f"{name}: ES epoch (paper)"]  # fmt: skip
    lines = [md_row(header), md_row(["---"] * len(header))]
    lines += [md_row(cells) for cells in text.wide_rows(grid, reporting, marks, ba, es, "—")]
    confidence = float(reporting["statistics"]["confidence"])
    return lines + [
        "",
        "Ours: mean ± standard deviation over seeds. BA: balanced accuracy on the test subjects; "
        "ES: the epoch at which training stopped (epochs counted from 0). "
        f"BA {confidence:.0%} CI: the interval of the mean over seeds, widened for seeds that "
        "are repeated random splits of one cohort (corrected resampled t, Nadeau and Bengio "
        "2003).",
    ]


def _comparison_section(comparisons: pd.DataFrame, reporting: Mapping[str, Any]) -> list[str]:
    statistics = reporting["statistics"]
    primary = str(statistics["primary_metric"])
    rows = comparisons[comparisons["metric"] == primary]
    label = primary.replace("_", " ")
    adjustment = text.adjustment_name(statistics["adjustment"])
    target = float(statistics["target_difference"])
    lines = [
        "",
        "## Baseline vs PIF",
        "",
        f"Primary endpoint: {label}, PIF minus baseline. Primary test: the corrected resampled "
        "t-test over seeds, paired by seed where both arms trained on the same split (recorded "
        "split.json identical); Welch's t-test where they did not (Pairing column). "
        f"p adj.: {adjustment}-adjusted across the {len(rows)} {label} "
        "comparisons of this table. Secondary: Wilcoxon signed-rank (Mann-Whitney U when "
        "unpaired), not adjusted. d_z: mean difference / SD of the differences (Cohen's d when "
        "unpaired); HL: Hodges-Lehmann estimate.",
        "",
    ]
    header = ["Data", "Setting", "Seeds", "Pairing", "BA diff (pp)", "95% CI (pp)", "d_z",
              "HL (pp)", "p (primary)", "p adj.", "p (secondary)", "MDD (pp)",
              f"Seeds for {100 * target:g} pp"]  # fmt: skip
    lines += [md_row(header), md_row(["---"] * len(header))]
    digits = _decimals(reporting, "p_value")
    for record in rows.to_dict("records"):
        lines.append(md_row([
            text.label(reporting, "task", record["task"]),
            text.label(reporting, "setting", record["setting"]),
            str(record["seeds"]), _pairing(record),
            text.signed(record["difference"], 2, 100), text.interval(record, 2, 100),
            text.number(record["effect_size"], 2) or "n/a",
            text.signed(record["hodges_lehmann"], 2, 100),
            text.p_value(record["p_value"], digits),
            text.p_value(record["p_value_adjusted"], digits),
            text.p_value(record["secondary_p_value"], digits),
            text.number(record["minimum_detectable_difference"], 1, 100) or "n/a",
            _seeds(record["seeds_for_target"]),
        ]))  # fmt: skip
    if rows.empty:
        lines.append(md_row(["—"] * len(header)))
    return lines + [
        "",
        f"MDD: the smallest true difference that the primary test finds with "
        f"{float(statistics['power']):.0%} power at α = {float(statistics['alpha']):g} with this "
        f"many seeds, given the observed SD of the paired differences. Seeds for "
        f"{100 * target:g} pp: how many seeds (with the same test-set sizes) a true "
        f"{100 * target:g} pp difference would need; > {MOST_SEEDS} means no number of seeds "
        "does, because the split-to-split part of the variance does not shrink with more seeds.",
    ]


def _stopping_section(
    table: pd.DataFrame, comparisons: pd.DataFrame, reporting: Mapping[str, Any]
) -> list[str]:
    es = _decimals(reporting, "early_stopping_epoch")
    digits = _decimals(reporting, "p_value")
    lines = [
        "",
        "## Early stopping",
        "",
        "Seeds that reached the epoch cap did not stop early: the log-rank test compares the "
        "arms' epochs to the early stop with those seeds censored (Kaplan-Meier curves in "
        "figures/). Best epoch: the epoch of the state that was tested. Where that is the best "
        "validation loss, the stopping epoch is the best epoch plus the patience (with no later "
        "improvement), so both are shown; where the protocol tests the last state (paper2019), "
        "the two are the same epoch.",
        "",
    ]
    header = ["Data", "Setting", "Pairing", "ES diff", "95% CI", "p (corrected t)",
              "p (log-rank, censored)", "Capped: baseline", "Capped: PIF"]  # fmt: skip
    lines += [md_row(header), md_row(["---"] * len(header))]
    rows = comparisons[comparisons["metric"] == "early_stopping_epoch"]
    for record in rows.to_dict("records"):
        lines.append(md_row([
            text.label(reporting, "task", record["task"]),
            text.label(reporting, "setting", record["setting"]),
            _pairing(record), text.signed(record["difference"], es, 1),
            text.interval(record, es, 1), text.p_value(record["p_value"], digits),
            text.p_value(record["logrank_p_value"], digits),
            str(record["baseline_stopped_by_cap"]), str(record["pif_stopped_by_cap"]),
        ]))  # fmt: skip
    if rows.empty:
        lines.append(md_row(["—"] * len(header)))
    header = ["Cell", "Best epoch", "ES epoch", "Stopped by the cap", "Steps to best",
              "Time to best (s)"]  # fmt: skip
    lines += ["", md_row(header), md_row(["---"] * len(header))]
    for record in table.to_dict("records"):
        lines.append(md_row([
            record["cell"], text.mean_std(record, "best_epoch", es, 1),
            text.mean_std(record, "early_stopping_epoch", es, 1),
            f"{record['stopped_by_cap']} of {record['seeds']}",
            text.number(record["steps_to_best_mean"], 0) or "n/a",
            text.number(record["seconds_to_best_mean"], 1) or "n/a",
        ]))  # fmt: skip
    return lines


def _training_set(record: Mapping[str, Any]) -> str:
    """'20% of images: 23 subjects, 30 images': the share kept, what it counted, and the
    distinct training subjects and images per seed (a range where seeds differ)."""
    share = f"{100 * float(record['subset']):g}%"
    if float(record["subset"]) < 1 and record.get("subset_unit") == "image":
        share += " of images"
    elif float(record["subset"]) < 1 and record.get("subset_scope") == "cohort":
        share += " of the cohort"
    counts = []
    for column, noun in (("train_subjects", "subjects"), ("train_images", "images")):
        low, high = record.get(f"{column}_min"), record.get(f"{column}_max")
        if low is not None and not pd.isna(low):
            span = f"{low:.0f}" if low == high else f"{low:.0f}-{high:.0f}"
            counts.append(f"{span} {noun}")
    return f"{share}: {', '.join(counts)}" if counts else share


def _cells_table(
    table: pd.DataFrame, reporting: Mapping[str, Any], marks: Mapping[str, str]
) -> list[str]:
    auc = _decimals(reporting, "roc_auc")
    header = ["Cell", "Training set (per seed)", "Architecture (ours)", "Architecture (paper)",
              "Protocol", "Profile", "Seeds", "ROC AUC", "One seed's BA CI (pp)",
              "Train time (s)", "Status"]  # fmt: skip
    lines = ["", "## Cells", "", md_row(header), md_row(["---"] * len(header))]
    for record in table.to_dict("records"):
        lines.append(md_row([
            record["cell"] + marks.get(record["cell"], ""),
            _training_set(record),
            str(record["architecture"] or "—"),
            str(record["paper_architecture"] or "—"),
            str(record["protocol"] or "—"),
            str(record["profile"] or "—"),
            f"{record['seeds']} of {record['seeds_planned']}",
            text.mean_std(record, "roc_auc", auc, 1),
            _seed_width(record),
            f"{float(record['train_seconds']):.0f}",
            record["status"],
        ]))  # fmt: skip
    return lines + [
        "",
        "One seed's BA CI: the mean width of the seeds' bootstrap intervals over their test "
        "subjects (resampled by subject within class; by image where a run did not record "
        "subjects, marked *): how much of the spread between seeds the test-set size alone "
        "explains.",
    ]


def _pairing(record: Mapping[str, Any]) -> str:
    return "paired" if record["pairing"] == "paired" else f"unpaired: {record['unpaired_because']}"


def _seeds(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"> {MOST_SEEDS}" if math.isinf(float(value)) else f"{int(value)}"


def _seed_width(record: Mapping[str, Any]) -> str:
    width = text.number(record["seed_balanced_accuracy_ci_width"], 1, 100)
    if width is None:
        return "n/a"
    return width if record["seed_intervals_by_subject"] else f"{width}*"


def md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"
