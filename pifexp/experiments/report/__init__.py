"""Reports from run folders: Table 1 (md, csv, tex), its statistics and its figures.

Owns: reading run folders for a report (runs); statistics (statistics: intervals, tests, effect
sizes, power; bootstrap: one seed's test-set intervals; convergence: early stopping with
censoring); the tables as data (tables); text formats (text, markdown, latex); figures (style,
cell_figures, pair_figures, patch_grid, figures); and writing them all (writing). A study's
report: its cells, comparisons and trends (study_tables), text (study_text), figures
(study_figures), written (study_writing). Everything it
knows about a run folder's files comes from pifexp.experiments.rundir.
May import: pandas, scipy, statsmodels, matplotlib, nilearn, pifexp.experiments.rundir,
pifexp.models, pifexp.data.grid, pifexp.synthetic (grids); never pifexp.commands or pifexp.cli,
never a module that trains.
"""

from pifexp.experiments.report.runs import CellRun, find_run_dirs, load_run, load_runs
from pifexp.experiments.report.statistics import paired_tests
from pifexp.experiments.report.writing import Report, build_report, describe_files, write_report

__all__ = [
    "CellRun",
    "Report",
    "build_report",
    "describe_files",
    "find_run_dirs",
    "load_run",
    "load_runs",
    "paired_tests",
    "write_report",
]
