"""table1.md: the paper's layout, the paired tests, the cells' settings and status, the notes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

import pifexp.experiments.report.text as text


def table_markdown(
    table: pd.DataFrame,
    paper: Mapping[str, Any],
    reporting: Mapping[str, Any],
    synthetic: bool,
) -> str:
    """table1.md: the paper's layout (task x model rows, Full / Small column groups, ours beside
    the paper's), the paired tests, the cells' settings and status, and the notes."""
    marks = text.cell_marks(table)
    lines = ["# Table 1: baseline vs PIF, balanced accuracy and early-stopping epoch", ""]
    lines += _headline_lines(text.headline(table, paper, synthetic))
    lines += _main_table(table, reporting, marks)
    lines += _pair_table(table, reporting)
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
        header += [f"{name}: BA % (ours)", f"{name}: BA % (paper)", f"{name}: ES epoch (ours)",
                   f"{name}: ES epoch (paper)"]  # fmt: skip
    lines = [md_row(header), md_row(["---"] * len(header))]
    lines += [md_row(cells) for cells in text.wide_rows(grid, reporting, marks, ba, es, "—")]
    return lines + [
        "",
        "Ours: mean ± standard deviation over seeds. BA: balanced accuracy on the test subjects; "
        "ES: the epoch at which early stopping ended training (epochs counted from 0).",
    ]


def _pair_table(table: pd.DataFrame, reporting: Mapping[str, Any]) -> list[str]:
    ba, es = _decimals(reporting, "balanced_accuracy"), _decimals(reporting, "early_stopping_epoch")
    digits = _decimals(reporting, "p_value")
    lines = [
        "",
        "## Baseline vs PIF, paired over seeds",
        "",
        "Seed k of both arms uses the same subject-level split. Difference: PIF minus baseline. "
        "p: Wilcoxon signed-rank test and paired t-test, "
        f"{reporting['statistics']['alternative']}; n/a where a test is undefined (fewer than "
        "two pairs, or no difference).",
        "",
    ]
    header = ["Data", "Setting", "Seeds", "BA diff (pp)", "BA p (Wilcoxon)", "BA p (t-test)",
              "ES diff", "ES p (Wilcoxon)", "ES p (t-test)"]  # fmt: skip
    lines += [md_row(header), md_row(["---"] * len(header))]
    pair_rows = 0
    for record in table.to_dict("records"):
        if record["model"] != "pif" or math.isnan(float(record["paired_seeds"])):
            continue
        lines.append(md_row([
            text.label(reporting, "task", record["task"]),
            text.label(reporting, "setting", record["setting"]),
            f"{int(record['paired_seeds'])}",
            text.difference(record, "balanced_accuracy", ba, 100),
            text.p_value(record["balanced_accuracy_wilcoxon_p_value"], digits),
            text.p_value(record["balanced_accuracy_ttest_rel_p_value"], digits),
            text.difference(record, "early_stopping_epoch", es, 1),
            text.p_value(record["early_stopping_epoch_wilcoxon_p_value"], digits),
            text.p_value(record["early_stopping_epoch_ttest_rel_p_value"], digits),
        ]))  # fmt: skip
        pair_rows += 1
    if not pair_rows:
        lines.append(md_row(["—"] * len(header)))
    return lines


def _cells_table(
    table: pd.DataFrame, reporting: Mapping[str, Any], marks: Mapping[str, str]
) -> list[str]:
    auc = _decimals(reporting, "roc_auc")
    header = ["Cell", "Training subjects", "Architecture (ours)", "Architecture (paper)",
              "Protocol", "Profile", "Seeds", "ROC AUC", "Train time (s)", "Status"]  # fmt: skip
    lines = ["", "## Cells", "", md_row(header), md_row(["---"] * len(header))]
    for record in table.to_dict("records"):
        lines.append(md_row([
            record["cell"] + marks.get(record["cell"], ""),
            f"{100 * float(record['subset']):g}%",
            str(record["architecture"] or "—"),
            str(record["paper_architecture"] or "—"),
            str(record["protocol"] or "—"),
            str(record["profile"] or "—"),
            f"{record['seeds']} of {record['seeds_planned']}",
            text.mean_std(record, "roc_auc", auc, 1),
            f"{float(record['train_seconds']):.0f}",
            record["status"],
        ]))  # fmt: skip
    return lines


def md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"
