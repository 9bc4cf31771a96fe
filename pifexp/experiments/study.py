"""A study as a batch: a named grid of cells (configs/study/<name>.yaml), the levels of one factor
times the arms, each cell one job of a Hydra multirun trained with `pifexp train`'s code into
out_dir/cells/<level>-<arm>/; the study's tables and figures come from those folders afterwards
(pifexp.experiments.report.study_tables).

Within a level every arm trains on the same cohort (a synthetic one is generated once, by the
first cell that needs it, and reused: its folder is keyed by its settings) and seed k draws the
same split in every arm, so the arms pair up seed by seed. A rerun of the same command on the
same out_dir resumes: finished seeds and cells are reused.

The study's folder: cells/<cell>/ (run folders, pifexp.experiments.rundir) and study.json, the
study's settings (its name, factor, labels, references), owned by this module, from which
`pifexp report DIR` rebuilds the tables without the command line that made them.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pifexp.config_dir import config_dir, group_options
from pifexp.errors import PifexpError
from pifexp.experiments.cells import CellOutcome, check_out_dir, refuse_keys, train_cell
from pifexp.experiments.report.study_writing import StudyReport, write_study_report
from pifexp.experiments.specs import plain
from pifexp.files import write_json_atomic

STUDY_GROUP = "study"
STUDY_FILE = "study.json"  # the study's settings, in its out_dir
# chosen by the study per cell: one value for all cells would make the grid a single column
CELL_SETTING_KEYS = ("cell", "level")
# what a cell's saved config keeps of the study: which study, factor, level and folder it is
CELL_IDENTITY = ("name", "factor", *CELL_SETTING_KEYS)
CELL_SETTINGS = tuple(f"study.{key}" for key in CELL_SETTING_KEYS)


def run_cell(cfg: DictConfig, run_dir: Path) -> CellOutcome:
    """Train one cell of the study (its level and arm) into run_dir; a failure is recorded and
    returned."""
    if OmegaConf.select(cfg, "arm.name") is None:
        raise PifexpError(
            "a study's cells need an arm (arm=<name>,...: "
            f"{', '.join(group_options('arm'))})"
        )
    return train_cell(cell_config(cfg), Path(run_dir), str(cfg.study.cell))


def cell_config(cfg: DictConfig) -> DictConfig:
    """The cell's config: of the study's settings only those that say which cell it is (the
    others describe the report, and changing them must not stop a rerun from resuming)."""
    cell = OmegaConf.masked_copy(cfg, [key for key in cfg if key != STUDY_GROUP])
    cell[STUDY_GROUP] = OmegaConf.masked_copy(cfg.study, list(CELL_IDENTITY))
    return cell


def start_study(config: DictConfig, command_line_keys: Collection[str]) -> None:
    """Before any cell starts: refuse settings that would make the study wrong, and record the
    study's settings in out_dir (a folder of another study is refused)."""
    out_dir = check_out_dir(config, f"study {config.study.name}")
    refuse_keys(command_line_keys, CELL_SETTINGS, f"the study (configs/study/{config.study.name}"
                ".yaml)")  # fmt: skip
    source = str(OmegaConf.select(config, "data.source"))
    if bool(config.study.synthetic_only) and source != "synthetic":
        runnable = [name for name in group_options(STUDY_GROUP) if not _synthetic_only(name)]
        raise PifexpError(
            f"the {config.study.name} study varies the synthetic cohorts ({config.study.factor}): "
            f"it cannot run on a cohort of one's own (data={source}); studies that can: "
            f"{', '.join(runnable)}"
        )
    settings = study_settings(config)
    recorded = read_settings(out_dir) if is_study_folder(out_dir) else settings
    if recorded.get("name") != settings["name"]:
        raise PifexpError(
            f"out_dir={out_dir} holds the {recorded.get('name')} study, not {settings['name']}; "
            "choose another out_dir"
        )
    write_json_atomic(out_dir / STUDY_FILE, settings)


def is_study_folder(folder: str | Path) -> bool:
    return (Path(folder) / STUDY_FILE).is_file()


def read_settings(folder: str | Path) -> dict[str, Any]:
    """A study folder's study.json."""
    path = Path(folder) / STUDY_FILE
    try:
        settings = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise PifexpError(f"{path} cannot be read as a study's settings ({error})") from None
    if not isinstance(settings, dict) or "name" not in settings:
        raise PifexpError(f"{path} is not a study's settings (no name)")
    return settings


def report_study(
    folder: str | Path, reporting: Mapping[str, Any], seeds: int | None = None,
    out_dir: str | Path | None = None,
) -> StudyReport:  # fmt: skip
    """A study's tables and figures again, from its folder alone (pifexp report DIR)."""
    return write_study_report(folder, read_settings(folder), reporting, seeds, out_dir)


def write_tables(config: DictConfig) -> StudyReport:
    """study.{md,csv,tex}, comparisons.csv, seeds.csv and figures/ in out_dir, from its cells."""
    reporting: Mapping[str, Any] = plain(config, "reporting")
    return write_study_report(
        config.out_dir, study_settings(config), reporting, seeds=int(config.trainer.seeds)
    )


def study_settings(config: DictConfig) -> dict[str, Any]:
    """The study's settings as plain data, without those that only a cell resolves (its level
    and folder name: they name the cell's arm and level)."""
    kept = [key for key in config.study if key not in CELL_SETTING_KEYS]
    return OmegaConf.to_container(OmegaConf.masked_copy(config.study, kept), resolve=True)


def _synthetic_only(name: str) -> bool:
    loaded = OmegaConf.load(config_dir() / STUDY_GROUP / f"{name}.yaml")
    return bool(OmegaConf.select(loaded, "study.synthetic_only", default=False))
