"""A report written: table1.{md,csv,tex}, comparisons.csv, seeds.csv and the figures, from run
folders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pifexp.errors import PifexpError
from pifexp.experiments.report.figures import FIGURES_DIR, write_figures
from pifexp.experiments.report.latex import comparisons_latex, table_latex
from pifexp.experiments.report.markdown import table_markdown
from pifexp.experiments.report.runs import CellRun, load_runs
from pifexp.experiments.report.tables import (
    cell_table,
    comparison_table,
    seed_table,
    table_csv,
)
from pifexp.files import write_text_atomic

TABLE_STEM = "table1"
COMPARISONS_FILE, SEEDS_FILE = "comparisons.csv", "seeds.csv"


@dataclass(frozen=True)
class Report:
    table: pd.DataFrame
    comparisons: pd.DataFrame
    markdown: str
    files: tuple[Path, ...]

    @property
    def unfinished(self) -> pd.DataFrame:
        return self.table[self.table["status"] != "complete"]


def build_report(
    runs: Sequence[CellRun], paper: Mapping[str, Any], reporting: Mapping[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """The cell table, the comparisons and the text of every table file."""
    if not runs:
        raise PifexpError("no run folders to report on")
    seeds = seed_table(runs, reporting)
    table = cell_table(runs, paper, reporting, seeds)
    comparisons = comparison_table(runs, reporting)
    synthetic = any(run.setting_value("data", "source") == "synthetic" for run in runs)
    texts = {
        f"{TABLE_STEM}.md": table_markdown(table, comparisons, paper, reporting, synthetic),
        f"{TABLE_STEM}.csv": table_csv(table, reporting),
        f"{TABLE_STEM}.tex": table_latex(table, paper, reporting, synthetic)
        + "\n"
        + comparisons_latex(comparisons, reporting),
        COMPARISONS_FILE: table_csv(comparisons, reporting),
        SEEDS_FILE: table_csv(seeds, reporting),
    }
    return table, comparisons, texts


def write_report(
    dirs: Sequence[str | Path],
    out_dir: str | Path,
    paper: Mapping[str, Any],
    reporting: Mapping[str, Any],
    seeds: int | None = None,
) -> Report:
    """Read the run folders in `dirs`, write the tables and the figures to `out_dir`."""
    out_dir = Path(out_dir)
    runs = load_runs(dirs, seeds)
    table, comparisons, texts = build_report(runs, paper, reporting)
    files = [write_text_atomic(out_dir / name, text) for name, text in texts.items()]
    if reporting["figures"]["enabled"]:
        files.extend(write_figures(runs, out_dir / FIGURES_DIR, reporting))
    return Report(table, comparisons, texts[f"{TABLE_STEM}.md"], tuple(files))


def describe_files(files: Sequence[Path]) -> str:
    """The tables by name, the figures by count and folder."""
    tables = [path for path in files if path.parent.name != FIGURES_DIR]
    figures = [path for path in files if path.parent.name == FIGURES_DIR]
    text = ", ".join(str(path) for path in tables)
    if figures:
        text += f" and {len(figures)} figures in {figures[0].parent}"
    return text
