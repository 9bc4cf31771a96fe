"""table1.tex: the paper's layout as a booktabs table, with the data source in the caption."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

import pifexp.experiments.report.text as text


def table_latex(
    table: pd.DataFrame,
    paper: Mapping[str, Any],
    reporting: Mapping[str, Any],
    synthetic: bool,
) -> str:
    """table1.tex: the paper's layout as a booktabs table, with the data source in the caption."""
    decimals = reporting["decimals"]
    ba, es = int(decimals["balanced_accuracy"]), int(decimals["early_stopping_epoch"])
    grid = text.layout(table, reporting["order"])
    marks = text.cell_marks(table)
    columns = "ll" + "r" * text.COLUMNS_PER_SETTING * len(grid.settings)
    groups = " & ".join(
        f"\\multicolumn{{{text.COLUMNS_PER_SETTING}}}{{c}}"
        f"{{{tex(text.label(reporting, 'setting', s))}}}"
        for s in grid.settings
    )
    lines = [
        "% pifexp table1 (needs \\usepackage{booktabs})",
        "\\begin{table}",
        "\\centering",
        f"\\begin{{tabular}}{{{columns}}}",
        "\\toprule",
        " & & " + groups + " \\\\",
        "Data & Model & "
        + " & ".join("BA ours & BA 95\\% CI & BA paper & ES ours & ES paper" for _ in grid.settings)
        + " \\\\",
        "\\midrule",
    ]
    for cells in text.wide_rows(grid, reporting, marks, ba, es, missing="--"):
        lines.append(" & ".join(tex(cell) for cell in cells) + " \\\\")
    notes = [f"{mark} {cell}: {text.status_of(table, cell)}." for cell, mark in marks.items()]
    caption = " ".join(
        [
            tex(_caption_headline(text.headline(table, paper, synthetic))),
            "Ours: mean $\\pm$ standard deviation over seeds; BA: balanced accuracy (\\%); ES: "
            "early-stopping epoch; CI: interval of the mean over seeds, corrected for repeated "
            "random splits (Nadeau and Bengio 2003).",
            *(tex(note) for note in notes),
        ]
    )
    lines += [
        "\\bottomrule",
        "\\end{tabular}",
        f"\\caption{{{caption}}}",
        "\\end{table}",
    ]
    return "\n".join(lines) + "\n"


def comparisons_latex(comparisons: pd.DataFrame, reporting: Mapping[str, Any]) -> str:
    """The primary endpoint's comparisons as a second booktabs table."""
    statistics = reporting["statistics"]
    rows = comparisons[comparisons["metric"] == statistics["primary_metric"]]
    digits = int(reporting["decimals"]["p_value"])
    lines = [
        "\\begin{table}",
        "\\centering",
        "\\begin{tabular}{llllrrrrr}",
        "\\toprule",
        "Data & Setting & Seeds & Pairing & Diff (pp) & 95\\% CI & $d_z$ & $p$ & $p$ adj. \\\\",
        "\\midrule",
    ]
    for record in rows.to_dict("records"):
        cells = [
            text.label(reporting, "task", record["task"]),
            text.label(reporting, "setting", record["setting"]),
            str(record["seeds"]), str(record["pairing"]),
            text.signed(record["difference"], 2, 100), text.interval(record, 2, 100),
            text.number(record["effect_size"], 2) or "n/a",
            text.p_value(record["p_value"], digits),
            text.p_value(record["p_value_adjusted"], digits),
        ]  # fmt: skip
        lines.append(" & ".join(tex(cell) for cell in cells) + " \\\\")
    adjustment = text.adjustment_name(statistics["adjustment"])
    caption = (
        f"PIF minus baseline, {str(statistics['primary_metric']).replace('_', ' ')} (primary "
        "endpoint): corrected resampled t-test over seeds paired by split (Welch's t-test when "
        f"unpaired); $p$ adj.: {adjustment} across the table's comparisons; $d_z$: "
        "mean difference / SD of the differences."
    )
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{tex_caption(caption)}}}",
              "\\end{table}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def tex_caption(caption: str) -> str:
    """A caption whose $...$ math stays math: the text between is escaped."""
    parts = caption.split("$")
    return "$".join(part if index % 2 else tex(part) for index, part in enumerate(parts))


def _caption_headline(headline: Mapping[str, Any]) -> str:
    parts = [f"Data of our cells (pifexp): {'; '.join(headline['sources'])}."]
    parts.append(f"Paper: {headline['paper']}")
    if headline["warning"]:
        parts.append(headline["warning"])
    return " ".join(parts)


def tex(value: str) -> str:
    """Plain text as LaTeX: special characters escaped, ± and dashes as LaTeX writes them."""
    value = str(value).replace("\\", "\\textbackslash\x00")
    for char in "&%$#_{}":
        value = value.replace(char, "\\" + char)
    value = value.replace("\x00", "{}").replace("~", "\\textasciitilde{}")
    value = value.replace("^", "\\textasciicircum{}")
    return value.replace("±", "$\\pm$").replace("—", "--").replace("−", "-")
