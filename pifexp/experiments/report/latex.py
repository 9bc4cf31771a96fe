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
    columns = "ll" + "rrrr" * len(grid.settings)
    groups = " & ".join(
        f"\\multicolumn{{4}}{{c}}{{{tex(text.label(reporting, 'setting', s))}}}"
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
        + " & ".join("BA ours & BA paper & ES ours & ES paper" for _ in grid.settings)
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
            "early-stopping epoch.",
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
