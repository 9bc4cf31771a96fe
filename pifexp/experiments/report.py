"""Table 1 from run folders: per cell the mean and std over seeds of the balanced accuracy and the
early-stopping epoch, the paper's published numbers beside them, paired tests of baseline vs PIF
over seeds, and the data source.

A run folder is what `pifexp train` writes (config.yaml, seed-<k>/metrics.json, ...); `pifexp
table1` writes one per cell under DIR/cells/ and adds failed.json where a cell failed. The tables
are made only from those files, in a fixed order with fixed number formats, so the same folders
always give byte-identical table1.md, table1.csv and table1.tex.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, ListConfig, OmegaConf
from scipy import stats

from pifexp.errors import PifexpError
from pifexp.experiments.protocol import setting_name
from pifexp.files import write_text_atomic

CONFIG_FILE = "config.yaml"  # written by pifexp train: the run's resolved config
JOB_CONFIG_FILE = Path(".hydra") / "config.yaml"  # written by Hydra before a job starts
FAILED_FILE = "failed.json"  # written by pifexp table1 when a cell fails
METRICS_FILE = "metrics.json"  # a finished seed
SUMMARY_FILE = "summary.csv"
CELLS_DIR = "cells"
TABLE_STEM = "table1"
METRICS = ("balanced_accuracy", "early_stopping_epoch", "roc_auc", "sensitivity", "specificity")
TESTS = ("wilcoxon", "ttest_rel")
PAIR_MODELS = ("baseline", "pif")


@dataclass(frozen=True)
class CellRun:
    """One run folder read back: which cell it is, its finished seeds and how it ended."""

    run_dir: Path
    task: str
    model: str
    setting: str
    subset: float
    config: Mapping[str, Any]  # the run's config as saved (resolved where it could be)
    results: pd.DataFrame  # one row per finished seed (its metrics.json), sorted by seed
    seeds_planned: tuple[int, ...]
    failure: str | None  # the error that stopped the cell, from failed.json
    data_source: str | None  # summary.csv's description of the images, when the run wrote one

    @property
    def name(self) -> str:
        return f"{self.task}-{self.model}-{self.setting}"

    @property
    def complete(self) -> bool:
        return self.failure is None and set(self.seeds_planned) <= set(self.results["seed"])

    @property
    def status(self) -> str:
        if self.failure is not None:
            return f"failed: {self.failure}"
        if self.complete:
            return "complete"
        return f"incomplete: {len(self.results)} of {len(self.seeds_planned)} seeds"

    def setting_value(self, *keys: str) -> Any:
        """A value of the run's config by dotted keys, or None where it has none."""
        node: Any = self.config
        for key in keys:
            if not isinstance(node, Mapping) or key not in node:
                return None
            node = node[key]
        return node


# ----------------------------------------------------------------------------- reading runs


def find_run_dirs(dirs: Iterable[str | Path]) -> list[Path]:
    """The run folders in `dirs`: each is a run folder itself, a `pifexp table1` folder (its
    cells/<cell>/) or a folder of run folders (a `pifexp train -m` sweep)."""
    found: list[Path] = []
    for given in dirs:
        folder = Path(given).expanduser()
        if not folder.is_dir():
            raise PifexpError(f"dirs: {folder} is not a folder")
        if _is_run_dir(folder):
            found.append(folder)
            continue
        parent = folder / CELLS_DIR if (folder / CELLS_DIR).is_dir() else folder
        runs = sorted(child for child in parent.iterdir() if child.is_dir() and _is_run_dir(child))
        if not runs:
            raise PifexpError(
                f"dirs: {folder} holds no run folders (a folder with {CONFIG_FILE}, or "
                f"{CELLS_DIR}/<cell>/ of pifexp table1)"
            )
        found.extend(runs)
    return found


def _is_run_dir(folder: Path) -> bool:
    return any((folder / name).is_file() for name in (CONFIG_FILE, FAILED_FILE, JOB_CONFIG_FILE))


def load_run(run_dir: str | Path, seeds: int | None = None) -> CellRun:
    """Read a run folder. Its setting (full, small) is the cell's (cell.setting) or, for a plain
    `pifexp train` run, the one its data.subset gives. `seeds`: count only the first `seeds`
    seeds (None: every finished seed, out of the config's trainer.seeds)."""
    run_dir = Path(run_dir)
    config = _read_config(run_dir)
    try:
        task = str(config["task"]["name"])
        model = str(config["model"]["name"])
        subset = float(config["data"]["subset"])
        first_seed = int(config["trainer"]["first_seed"])
        planned = int(config["trainer"]["seeds"]) if seeds is None else int(seeds)
    except (KeyError, TypeError, ValueError) as error:
        raise PifexpError(
            f"{run_dir}: its config lacks a setting that a report needs ({error})"
        ) from None
    cell = config.get("cell") if isinstance(config.get("cell"), Mapping) else None
    setting = str(cell["setting"]) if cell and cell.get("setting") else setting_name(subset)
    seeds_planned = tuple(range(first_seed, first_seed + planned))
    results = _finished_seeds(run_dir, None if seeds is None else set(seeds_planned))
    return CellRun(
        run_dir=run_dir,
        task=task,
        model=model,
        setting=setting,
        subset=subset,
        config=config,
        results=results,
        seeds_planned=seeds_planned,
        failure=_failure(run_dir),
        data_source=_data_source(run_dir),
    )


def load_runs(dirs: Iterable[str | Path], seeds: int | None = None) -> list[CellRun]:
    """Every run folder in `dirs` (see find_run_dirs); two folders of one cell are an error."""
    runs = [load_run(folder, seeds) for folder in find_run_dirs(dirs)]
    seen: dict[str, Path] = {}
    for run in runs:
        if run.name in seen:
            raise PifexpError(
                f"{seen[run.name]} and {run.run_dir} hold the same cell ({run.name}); report them "
                "separately"
            )
        seen[run.name] = run.run_dir
    return runs


def _read_config(run_dir: Path) -> dict[str, Any]:
    # a failed job's own config says which cell it was; the config.yaml in its folder may be
    # another run's, the very reason it failed
    failed = (run_dir / FAILED_FILE).is_file()
    for name in (JOB_CONFIG_FILE, CONFIG_FILE) if failed else (CONFIG_FILE, JOB_CONFIG_FILE):
        path = run_dir / name
        if not path.is_file():
            continue
        try:
            loaded = OmegaConf.load(path)
        except Exception as error:  # a YAML or OmegaConf error: the file is not a config
            raise PifexpError(f"{path} cannot be read as a config ({error})") from None
        try:
            return OmegaConf.to_container(loaded, resolve=True)
        except Exception:  # a job's config before training may hold unresolvable settings
            return OmegaConf.to_container(loaded, resolve=False)
    raise PifexpError(f"{run_dir} holds no {CONFIG_FILE}: it is not a run folder")


def _finished_seeds(run_dir: Path, only: set[int] | None) -> pd.DataFrame:
    rows = []
    for path in sorted(run_dir.glob(f"seed-*/{METRICS_FILE}")):
        try:
            metrics = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise PifexpError(f"{path} cannot be read ({error})") from None
        if only is None or int(metrics["seed"]) in only:
            rows.append(metrics)
    columns = ["seed", *METRICS, "best_epoch", "epochs_trained", "seconds"]
    table = pd.DataFrame(rows, columns=columns if not rows else None)
    return table.sort_values("seed", kind="stable").reset_index(drop=True)


def _failure(run_dir: Path) -> str | None:
    path = run_dir / FAILED_FILE
    if not path.is_file():
        return None
    try:
        return str(json.loads(path.read_text())["error"])
    except (OSError, ValueError, KeyError) as error:
        return f"(the failure record {path} cannot be read: {error})"


def _data_source(run_dir: Path) -> str | None:
    path = run_dir / SUMMARY_FILE
    if not path.is_file():
        return None
    summary = pd.read_csv(path)
    if "data_source" not in summary or summary.empty:
        return None
    return str(summary["data_source"].iloc[0])


# ----------------------------------------------------------------------------- the table


def paired_tests(
    baseline: pd.DataFrame,
    pif: pd.DataFrame,
    metrics: Sequence[str],
    alternative: str = "two-sided",
    zero_method: str = "wilcox",
) -> dict[str, float]:
    """Paired tests of PIF vs baseline over the seeds both finished (seed k of both arms trains
    on the same split): per metric the mean difference (PIF - baseline) and the p-values of the
    Wilcoxon signed-rank test and the paired t-test. NaN where a test is undefined (fewer than
    two pairs, or no difference at all)."""
    merged = baseline[["seed", *metrics]].merge(
        pif[["seed", *metrics]], on="seed", suffixes=("_baseline", "_pif")
    )
    result: dict[str, float] = {"paired_seeds": float(len(merged))}
    for metric in metrics:
        with_pif = merged[f"{metric}_pif"].to_numpy(dtype=float)
        with_baseline = merged[f"{metric}_baseline"].to_numpy(dtype=float)
        difference = with_pif - with_baseline
        result[f"{metric}_difference"] = float(difference.mean()) if len(merged) else math.nan
        varies = len(merged) >= 2 and bool(np.any(difference != 0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # small samples: scipy warns, the p-value stands
            result[f"{metric}_wilcoxon_p_value"] = (
                float(stats.wilcoxon(with_pif, with_baseline, zero_method=zero_method,
                                     alternative=alternative).pvalue)
                if varies else math.nan
            )  # fmt: skip
            result[f"{metric}_ttest_rel_p_value"] = (
                float(stats.ttest_rel(with_pif, with_baseline, alternative=alternative).pvalue)
                if varies and np.std(difference) > 0 else math.nan
            )  # fmt: skip
    return result


def _order_key(run: CellRun, order: Mapping[str, Sequence[str]]) -> tuple:
    def position(kind: str, value: str) -> tuple[int, str]:
        values = list(order.get(kind, []))
        return (values.index(value), "") if value in values else (len(values), value)

    return (
        position("task", run.task),
        position("setting", run.setting),
        position("model", run.model),
    )


def cell_table(
    runs: Sequence[CellRun], paper: Mapping[str, Any], reporting: Mapping[str, Any]
) -> pd.DataFrame:
    """table1.csv: one row per cell in the configured order. Balanced accuracy as a fraction, as
    in results.csv; the paper's numbers beside ours in `paper_*` columns; the pair's p-values on
    both cells of a task and setting."""
    ordered = sorted(runs, key=lambda run: _order_key(run, reporting["order"]))
    statistics = reporting["statistics"]
    test_metrics = list(statistics["metrics"])
    paper_cells = paper.get("cells") or {}
    pairs = _pairs(ordered)
    rows = []
    for run in ordered:
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
        published = paper_cells.get(run.name) or {}
        row["paper_architecture"] = published.get("architecture")
        row["paper_balanced_accuracy"] = (
            float(published["balanced_accuracy"]) / 100 if "balanced_accuracy" in published
            else math.nan
        )  # fmt: skip
        row["paper_early_stopping_epoch"] = float(published.get("early_stopping_epoch", math.nan))
        pair = pairs.get((run.task, run.setting))
        tests = (
            paired_tests(pair["baseline"].results, pair["pif"].results, test_metrics,
                         statistics["alternative"], statistics["wilcoxon_zero_method"])
            if pair and run.model in PAIR_MODELS else {}
        )  # fmt: skip
        row["paired_seeds"] = tests.get("paired_seeds", math.nan)
        for metric in test_metrics:
            row[f"{metric}_paired_difference"] = tests.get(f"{metric}_difference", math.nan)
            for test in TESTS:
                row[f"{metric}_{test}_p_value"] = tests.get(f"{metric}_{test}_p_value", math.nan)
        row["train_seconds"] = float(run.results["seconds"].sum()) if len(run.results) else 0.0
        row["data_source"] = run.data_source
        rows.append(row)
    return pd.DataFrame(rows)


def _pairs(runs: Sequence[CellRun]) -> dict[tuple[str, str], dict[str, CellRun]]:
    by_arm: dict[tuple[str, str], dict[str, CellRun]] = {}
    for run in runs:
        by_arm.setdefault((run.task, run.setting), {})[run.model] = run
    return {key: arms for key, arms in by_arm.items() if all(m in arms for m in PAIR_MODELS)}


def table_csv(table: pd.DataFrame, reporting: Mapping[str, Any]) -> str:
    digits = int(reporting["decimals"]["csv_significant_digits"])
    return table.to_csv(index=False, float_format=f"%.{digits}g", lineterminator="\n")


# ----------------------------------------------------------------------------- formatting


def _number(value: Any, decimals: int, scale: float = 1.0) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return f"{scale * float(value):.{decimals}f}"


def _mean_std(row: Mapping[str, Any], metric: str, decimals: int, scale: float) -> str:
    mean = _number(row[f"{metric}_mean"], decimals, scale)
    if mean is None:
        return "—"
    std = _number(row[f"{metric}_std"], decimals, scale)
    return mean if std is None else f"{mean} ± {std}"


def _p_value(value: Any, decimals: int) -> str:
    if value is None or math.isnan(float(value)):
        return "n/a"
    floor = 10.0**-decimals
    return f"<{floor:.{decimals}f}" if float(value) < floor else f"{float(value):.{decimals}f}"


def _label(reporting: Mapping[str, Any], kind: str, value: str) -> str:
    return str((reporting["labels"].get(kind) or {}).get(value, value))


@dataclass(frozen=True)
class _Layout:
    """The paper's layout: rows task x model, a column group per setting."""

    rows: list[tuple[str, str]]
    settings: list[str]
    cells: dict[tuple[str, str, str], Mapping[str, Any]]


def _layout(table: pd.DataFrame, order: Mapping[str, Sequence[str]]) -> _Layout:
    records = table.to_dict("records")
    # the table is in the configured order already; settings follow order.setting
    rows = list(dict.fromkeys((record["task"], record["model"]) for record in records))
    known = list(order.get("setting", []))
    settings = sorted(
        {record["setting"] for record in records},
        key=lambda s: (known.index(s), "") if s in known else (len(known), s),
    )
    cells = {(r["task"], r["model"], r["setting"]): r for r in records}
    return _Layout(rows, settings, cells)


def _cell_marks(table: pd.DataFrame) -> dict[str, str]:
    """Footnote marks for cells that did not complete."""
    marks = {}
    for record in table.to_dict("records"):
        if record["status"] != "complete":
            marks[record["cell"]] = f"[{len(marks) + 1}]"
    return marks


def _sources(runs_table: pd.DataFrame) -> list[str]:
    return sorted({str(s) for s in runs_table["data_source"] if isinstance(s, str) and s})


def _headline(table: pd.DataFrame, paper: Mapping[str, Any], synthetic: bool) -> dict[str, Any]:
    """Where our numbers and the paper's come from, in words."""
    return {
        "sources": _sources(table) or ["no finished seeds, so no data source was recorded"],
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


def _is_synthetic(runs: Sequence[CellRun]) -> bool:
    return any(run.setting_value("data", "source") == "synthetic" for run in runs)


def _wide_rows(
    layout: Any,
    reporting: Mapping[str, Any],
    marks: Mapping[str, str],
    ba: int,
    es: int,
    missing: str,
) -> list[list[str]]:
    """The paper's layout, one list of cells per task x model row: per setting our balanced
    accuracy and the paper's, our early-stopping epoch and the paper's."""
    rows = []
    for task, model in layout.rows:
        cells = [_label(reporting, "task", task), _label(reporting, "model", model)]
        for setting in layout.settings:
            record = layout.cells.get((task, model, setting))
            if record is None:
                cells += [missing] * 4
                continue
            mark = marks.get(record["cell"], "")
            cells += [
                _mean_std(record, "balanced_accuracy", ba, 100) + mark,
                _number(record["paper_balanced_accuracy"], ba, 100) or missing,
                _mean_std(record, "early_stopping_epoch", es, 1) + mark,
                _number(record["paper_early_stopping_epoch"], es) or missing,
            ]
        rows.append(cells)
    return rows


def table_markdown(
    table: pd.DataFrame,
    paper: Mapping[str, Any],
    reporting: Mapping[str, Any],
    synthetic: bool,
) -> str:
    """table1.md: the paper's layout (task x model rows, Full / Small column groups, ours beside
    the paper's), the paired tests, the cells' settings and status, and the notes."""
    decimals = reporting["decimals"]
    ba, es = int(decimals["balanced_accuracy"]), int(decimals["early_stopping_epoch"])
    pd_, auc = int(decimals["p_value"]), int(decimals["roc_auc"])
    layout = _layout(table, reporting["order"])
    marks = _cell_marks(table)
    lines = ["# Table 1: baseline vs PIF, balanced accuracy and early-stopping epoch", ""]
    headline = _headline(table, paper, synthetic)
    if headline["warning"]:
        lines += [f"**{headline['warning']}**", ""]
    lines += ["Data of our cells (pifexp):", ""]
    lines += [f"- {source}" for source in headline["sources"]]
    lines += ["", f"Paper: {headline['paper']}", ""]

    header = ["Data", "Model"]
    for setting in layout.settings:
        name = _label(reporting, "setting", setting)
        header += [f"{name}: BA % (ours)", f"{name}: BA % (paper)", f"{name}: ES epoch (ours)",
                   f"{name}: ES epoch (paper)"]  # fmt: skip
    lines += [_md_row(header), _md_row(["---"] * len(header))]
    for cells in _wide_rows(layout, reporting, marks, ba, es, missing="—"):
        lines.append(_md_row(cells))
    lines += [
        "",
        "Ours: mean ± standard deviation over seeds. BA: balanced accuracy on the test subjects; "
        "ES: the epoch at which early stopping ended training (epochs counted from 0).",
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
    lines += [_md_row(header), _md_row(["---"] * len(header))]
    pair_rows = 0
    for record in table.to_dict("records"):
        if record["model"] != "pif" or math.isnan(float(record["paired_seeds"])):
            continue
        lines.append(_md_row([
            _label(reporting, "task", record["task"]),
            _label(reporting, "setting", record["setting"]),
            f"{int(record['paired_seeds'])}",
            _difference(record, "balanced_accuracy", ba, 100),
            _p_value(record["balanced_accuracy_wilcoxon_p_value"], pd_),
            _p_value(record["balanced_accuracy_ttest_rel_p_value"], pd_),
            _difference(record, "early_stopping_epoch", es, 1),
            _p_value(record["early_stopping_epoch_wilcoxon_p_value"], pd_),
            _p_value(record["early_stopping_epoch_ttest_rel_p_value"], pd_),
        ]))  # fmt: skip
        pair_rows += 1
    if not pair_rows:
        lines.append(_md_row(["—"] * len(header)))
    lines += ["", "## Cells", ""]
    header = ["Cell", "Training subjects", "Architecture (ours)", "Architecture (paper)",
              "Protocol", "Profile", "Seeds", "ROC AUC", "Train time (s)", "Status"]  # fmt: skip
    lines += [_md_row(header), _md_row(["---"] * len(header))]
    for record in table.to_dict("records"):
        lines.append(_md_row([
            record["cell"] + marks.get(record["cell"], ""),
            f"{100 * float(record['subset']):g}%",
            str(record["architecture"] or "—"),
            str(record["paper_architecture"] or "—"),
            str(record["protocol"] or "—"),
            str(record["profile"] or "—"),
            f"{record['seeds']} of {record['seeds_planned']}",
            _mean_std(record, "roc_auc", auc, 1),
            f"{float(record['train_seconds']):.0f}",
            record["status"],
        ]))  # fmt: skip
    notes = [f"{mark} {cell}: {_status_of(table, cell)}" for cell, mark in marks.items()]
    notes += _paper_notes(paper, set(table["task"]))
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _paper_notes(paper: Mapping[str, Any], tasks: set[str]) -> list[str]:
    return [
        str(note["text"])
        for note in paper.get("notes") or []
        if note.get("tasks") is None or tasks & set(note["tasks"])
    ]


def _status_of(table: pd.DataFrame, cell: str) -> str:
    return str(table.loc[table["cell"] == cell, "status"].iloc[0])


def _difference(pif: Mapping[str, Any], metric: str, decimals: int, scale: float) -> str:
    value = float(pif[f"{metric}_paired_difference"])
    text = _number(value, decimals, scale)
    return "—" if text is None else f"{'+' if value >= 0 else ''}{text}"


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def table_latex(
    table: pd.DataFrame,
    paper: Mapping[str, Any],
    reporting: Mapping[str, Any],
    synthetic: bool,
) -> str:
    """table1.tex: the paper's layout as a booktabs table, with the data source in the caption."""
    decimals = reporting["decimals"]
    ba, es = int(decimals["balanced_accuracy"]), int(decimals["early_stopping_epoch"])
    layout = _layout(table, reporting["order"])
    marks = _cell_marks(table)
    columns = "ll" + "rrrr" * len(layout.settings)
    lines = [
        "% pifexp table1 (needs \\usepackage{booktabs})",
        "\\begin{table}",
        "\\centering",
        f"\\begin{{tabular}}{{{columns}}}",
        "\\toprule",
        " & & "
        + " & ".join(
            f"\\multicolumn{{4}}{{c}}{{{_tex(_label(reporting, 'setting', s))}}}"
            for s in layout.settings
        )
        + " \\\\",
        "Data & Model & "
        + " & ".join("BA ours & BA paper & ES ours & ES paper" for _ in layout.settings)
        + " \\\\",
        "\\midrule",
    ]
    for cells in _wide_rows(layout, reporting, marks, ba, es, missing="--"):
        lines.append(" & ".join(_tex(cell) for cell in cells) + " \\\\")
    notes = [f"{mark} {cell}: {_status_of(table, cell)}." for cell, mark in marks.items()]
    caption = " ".join(
        [
            _tex(_caption_headline(_headline(table, paper, synthetic))),
            "Ours: mean $\\pm$ standard deviation over seeds; BA: balanced accuracy (\\%); ES: "
            "early-stopping epoch.",
            *(_tex(note) for note in notes),
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


def _tex(text: str) -> str:
    """Plain text as LaTeX: special characters escaped, ± and dashes as LaTeX writes them."""
    text = str(text).replace("\\", "\\textbackslash\x00")
    for char in "&%$#_{}":
        text = text.replace(char, "\\" + char)
    text = text.replace("\x00", "{}").replace("~", "\\textasciitilde{}")
    text = text.replace("^", "\\textasciicircum{}")
    return text.replace("±", "$\\pm$").replace("—", "--").replace("−", "-")


# ----------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class Report:
    table: pd.DataFrame
    markdown: str
    files: tuple[Path, ...]

    @property
    def unfinished(self) -> pd.DataFrame:
        return self.table[self.table["status"] != "complete"]


def build_report(
    runs: Sequence[CellRun], paper: Mapping[str, Any], reporting: Mapping[str, Any]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The table and the text of table1.md, table1.csv and table1.tex."""
    if not runs:
        raise PifexpError("no run folders to report on")
    table = cell_table(runs, paper, reporting)
    synthetic = _is_synthetic(runs)
    texts = {
        f"{TABLE_STEM}.md": table_markdown(table, paper, reporting, synthetic),
        f"{TABLE_STEM}.csv": table_csv(table, reporting),
        f"{TABLE_STEM}.tex": table_latex(table, paper, reporting, synthetic),
    }
    return table, texts


def write_report(
    dirs: Sequence[str | Path],
    out_dir: str | Path,
    paper: Mapping[str, Any],
    reporting: Mapping[str, Any],
    seeds: int | None = None,
) -> Report:
    """Read the run folders in `dirs`, write table1.{md,csv,tex} and the figures to `out_dir`."""
    out_dir = Path(out_dir)
    runs = load_runs(dirs, seeds)
    table, texts = build_report(runs, paper, reporting)
    files = []
    for name, text in texts.items():
        files.append(write_text_atomic(out_dir / name, text))
    if reporting["figures"]["enabled"]:
        from pifexp.experiments.plots import write_figures

        files.extend(write_figures(runs, out_dir / "figures", reporting))
    return Report(table, texts[f"{TABLE_STEM}.md"], tuple(files))


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def _dir_list(setting: Any) -> list[str]:
    if isinstance(setting, ListConfig | list | tuple):
        return [str(item) for item in setting]
    return [str(setting)]


def report_command(cfg: DictConfig) -> Report:
    """pifexp report dirs=[DIR,...]: the tables and figures again, from the run folders only."""
    if OmegaConf.is_missing(cfg, "dirs"):
        raise PifexpError("dirs is required: pifexp report dirs=DIR or dirs=[DIR1,DIR2]")
    dirs = _dir_list(cfg.dirs)
    if not dirs:
        raise PifexpError("dirs is empty: name at least one run folder")
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(dirs[0])
    report = write_report(dirs, out_dir, _plain(cfg.paper), _plain(cfg.reporting), cfg.seeds)
    print(report.markdown)
    print(f"written: {describe_files(report.files)}")
    return report


def describe_files(files: Sequence[Path]) -> str:
    """The tables by name, the figures by count and folder."""
    tables = [path for path in files if path.stem == TABLE_STEM]
    figures = [path for path in files if path.stem != TABLE_STEM]
    text = ", ".join(str(path) for path in tables)
    if figures:
        text += f" and {len(figures)} figures in {figures[0].parent}"
    return text
