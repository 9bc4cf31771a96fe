"""What the Markdown and LaTeX tables share: fixed number formats (so the same runs give the same
bytes), labels, the paper's layout, footnote marks and the headline about where data came from."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

COLUMNS_PER_SETTING = 5  # BA ours, its interval, BA paper, ES ours, ES paper


ADJUSTMENT_NAMES = {  # statsmodels multipletests method: its name in prose
    "holm": "Holm", "bonferroni": "Bonferroni", "sidak": "Šidák", "holm-sidak": "Holm-Šidák",
    "simes-hochberg": "Hochberg", "hommel": "Hommel", "fdr_bh": "Benjamini-Hochberg",
    "fdr_by": "Benjamini-Yekutieli",
}


def adjustment_name(method: Any) -> str:
    """The multiple-comparison adjustment as prose names it ("holm" -> "Holm")."""
    return ADJUSTMENT_NAMES.get(str(method), str(method))


def number(value: Any, decimals: int, scale: float = 1.0) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return f"{scale * float(value):.{decimals}f}"


def mean_std(row: Mapping[str, Any], metric: str, decimals: int, scale: float) -> str:
    mean = number(row[f"{metric}_mean"], decimals, scale)
    if mean is None:
        return "—"
    std = number(row[f"{metric}_std"], decimals, scale)
    return mean if std is None else f"{mean} ± {std}"


def p_value(value: Any, decimals: int) -> str:
    if value is None or math.isnan(float(value)):
        return "n/a"
    floor = 10.0**-decimals
    return f"<{floor:.{decimals}f}" if float(value) < floor else f"{float(value):.{decimals}f}"


def signed(value: Any, decimals: int, scale: float = 1.0) -> str:
    """A difference with its sign: +3.00, -1.25; "n/a" where it is undefined."""
    text = number(value, decimals, scale)
    return "n/a" if text is None else f"{'+' if float(value) >= 0 else ''}{text}"


def interval(record: Mapping[str, Any], decimals: int, scale: float = 1.0, prefix: str = "ci"
             ) -> str:  # fmt: skip
    """[low, high] from a record's <prefix>_low and <prefix>_high; "n/a" where undefined."""
    low = number(record[f"{prefix}_low"], decimals, scale)
    high = number(record[f"{prefix}_high"], decimals, scale)
    return "n/a" if low is None or high is None else f"[{low}, {high}]"


def label(reporting: Mapping[str, Any], kind: str, value: str) -> str:
    return str((reporting["labels"].get(kind) or {}).get(value, value))


@dataclass(frozen=True)
class Layout:
    """The paper's layout: rows task x model, a column group per setting."""

    rows: list[tuple[str, str]]
    settings: list[str]
    cells: dict[tuple[str, str, str], Mapping[str, Any]]


def layout(table: pd.DataFrame, order: Mapping[str, Sequence[str]]) -> Layout:
    records = table.to_dict("records")
    # the table is in the configured order already; settings follow order.setting
    rows = list(dict.fromkeys((record["task"], record["model"]) for record in records))
    known = list(order.get("setting", []))
    settings = sorted(
        {record["setting"] for record in records},
        key=lambda s: (known.index(s), "") if s in known else (len(known), s),
    )
    cells = {(r["task"], r["model"], r["setting"]): r for r in records}
    return Layout(rows, settings, cells)


def cell_marks(table: pd.DataFrame) -> dict[str, str]:
    """Footnote marks for cells that did not complete."""
    marks = {}
    for record in table.to_dict("records"):
        if record["status"] != "complete":
            marks[record["cell"]] = f"[{len(marks) + 1}]"
    return marks


def status_of(table: pd.DataFrame, cell: str) -> str:
    return str(table.loc[table["cell"] == cell, "status"].iloc[0])


def headline(table: pd.DataFrame, paper: Mapping[str, Any], synthetic: bool) -> dict[str, Any]:
    """Where our numbers and the paper's come from, in words."""
    sources = sorted({str(s) for s in table["data_source"] if isinstance(s, str) and s})
    return {
        "sources": sources or ["no finished seeds, so no data source was recorded"],
        "paper": f"{paper.get('label', 'the published Table 1')}: the published numbers (mean of "
        f"{paper.get('repeats', '?')} repeats) on the authors' data with their protocol, shown "
        "for comparison only.",
        "warning": (
            "Our numbers come from synthetic data: they are not the paper's result and say "
            "nothing about real MRI."
            if synthetic
            else None
        ),
    }


def paper_notes(paper: Mapping[str, Any], tasks: set[str]) -> list[str]:
    return [
        str(note["text"])
        for note in paper.get("notes") or []
        if note.get("tasks") is None or tasks & set(note["tasks"])
    ]


def wide_rows(
    grid: Layout,
    reporting: Mapping[str, Any],
    marks: Mapping[str, str],
    ba: int,
    es: int,
    missing: str,
) -> list[list[str]]:
    """The paper's layout, one list of cells per task x model row: per setting our balanced
    accuracy, its interval and the paper's, our early-stopping epoch and the paper's."""
    rows = []
    for task, model in grid.rows:
        cells = [label(reporting, "task", task), label(reporting, "model", model)]
        for setting in grid.settings:
            record = grid.cells.get((task, model, setting))
            if record is None:
                cells += [missing] * COLUMNS_PER_SETTING
                continue
            mark = marks.get(record["cell"], "")
            ci = interval(record, ba - 1, 100, prefix="balanced_accuracy_ci")
            cells += [
                mean_std(record, "balanced_accuracy", ba, 100) + mark,
                missing if ci == "n/a" else ci,
                number(record["paper_balanced_accuracy"], ba, 100) or missing,
                mean_std(record, "early_stopping_epoch", es, 1) + mark,
                number(record["paper_early_stopping_epoch"], es) or missing,
            ]
        rows.append(cells)
    return rows
