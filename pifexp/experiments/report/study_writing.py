"""A study's report written: study.{md,csv,tex}, comparisons.csv, trends.csv, seeds.csv and the
figures, from its cell folders."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pifexp.errors import PifexpError
from pifexp.experiments.report.study_figures import write_study_figures
from pifexp.experiments.report.study_tables import (
    cell_table,
    comparison_table,
    load_study,
    seed_table,
    trend_table,
)
from pifexp.experiments.report.study_text import study_latex, study_markdown
from pifexp.experiments.report.style import FIGURES_DIR
from pifexp.experiments.report.tables import table_csv
from pifexp.experiments.report.writing import COMPARISONS_FILE, SEEDS_FILE
from pifexp.files import write_text_atomic

STUDY_STEM = "study"
TRENDS_FILE = "trends.csv"


@dataclass(frozen=True)
class StudyReport:
    table: pd.DataFrame
    comparisons: pd.DataFrame
    trends: pd.DataFrame
    markdown: str
    files: tuple[Path, ...]

    @property
    def unfinished(self) -> pd.DataFrame:
        return self.table[self.table["status"] != "complete"]


def write_study_report(
    folder: str | Path,
    study: Mapping[str, Any],
    reporting: Mapping[str, Any],
    seeds: int | None = None,
    out_dir: str | Path | None = None,
) -> StudyReport:
    """Read the study's cells in folder/cells/, write its tables and figures into out_dir
    (default: the folder)."""
    out_dir = Path(out_dir if out_dir is not None else folder)
    cells = load_study(folder, study, seeds)
    if not cells:
        raise PifexpError(f"{folder} holds no cells of the {study['name']} study")
    table = cell_table(cells, reporting)
    comparisons = comparison_table(cells, study, reporting)
    trends = trend_table(cells, study, reporting)
    markdown = study_markdown(table, comparisons, trends, study, reporting)
    texts = {
        f"{STUDY_STEM}.md": markdown,
        f"{STUDY_STEM}.csv": table_csv(table, reporting),
        f"{STUDY_STEM}.tex": study_latex(table, comparisons, study, reporting),
        COMPARISONS_FILE: table_csv(comparisons, reporting),
        TRENDS_FILE: table_csv(trends, reporting),
        SEEDS_FILE: table_csv(seed_table(cells, reporting), reporting),
    }
    files = [write_text_atomic(out_dir / name, text) for name, text in texts.items()]
    if reporting["figures"]["enabled"]:
        files += write_study_figures(table, comparisons, study, reporting, out_dir / FIGURES_DIR)
    return StudyReport(table, comparisons, trends, markdown, tuple(files))
