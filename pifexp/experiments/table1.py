"""Table 1 as a batch: every cell is one job of a Hydra multirun (configs/table1.yaml), trained
with `pifexp train`'s code into out_dir/cells/<cell>/; the tables and figures come from those
folders afterwards (pifexp.experiments.report).

Which launcher runs the jobs (in this process, in parallel local processes, on a SLURM cluster) is
Hydra's choice (hydra/launcher=...), not this module's. A rerun of the same command on the same
out_dir resumes: `train` skips the seeds that are done, so finished cells cost only a read. A cell
that fails writes failed.json and the batch goes on; the table names the failure.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pifexp.errors import PifexpError
from pifexp.experiments import rundir
from pifexp.experiments.report import Report, write_report
from pifexp.experiments.run import train
from pifexp.experiments.specs import plain, run_spec

log = logging.getLogger(__name__)

# settings that each cell chooses (configs/experiment/<cell>.yaml); an override would make every
# cell the same
CELL_SETTINGS = ("task", "model", "setting", "data.subset", "network@model")
# settings of the batch, not of a cell's training: left out of the cell's saved config, so that
# changing them (or moving out_dir) does not stop a rerun from resuming the cells
BATCH_SETTINGS = ("out_dir", "paper", "reporting")


@dataclass(frozen=True)
class CellOutcome:
    cell: str
    status: str  # complete | failed
    seeds: int = 0
    error: str | None = None


def training_config(cfg: DictConfig) -> DictConfig:
    """The cell's `pifexp train` config: cfg without the batch's own settings."""
    return OmegaConf.masked_copy(cfg, [key for key in cfg if key not in BATCH_SETTINGS])


def run_cell(cfg: DictConfig, run_dir: Path) -> CellOutcome:
    """Train one cell into run_dir. A failure is written to run_dir/failed.json and returned, not
    raised, so that the other cells of the batch still run."""
    if OmegaConf.select(cfg, "cell.name") is None:
        raise PifexpError(
            "pifexp table1 runs the cells of configs/experiment/ (experiment=<cell>,...); no cell "
            "was chosen"
        )
    name = str(cfg.cell.name)
    rundir.clear_failure(run_dir)  # a retry: the cell's earlier failure no longer stands
    try:
        trained = train(run_spec(training_config(cfg)), Path(run_dir))
    except Exception as error:  # any failure of one cell is recorded; the batch goes on
        message = str(error) if isinstance(error, PifexpError) else _describe(error)
        log.error("cell %s failed: %s", name, message)
        if not isinstance(error, PifexpError):
            log.error("%s", "".join(traceback.format_exception(error)))
        rundir.write_failure(run_dir, name, message)
        return CellOutcome(name, "failed", error=message)
    return CellOutcome(name, "complete", seeds=len(trained.results))


def _describe(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def check_batch(config: DictConfig, command_line_keys: Collection[str]) -> None:
    """Settings that would make the batch wrong, before any cell starts."""
    if OmegaConf.is_missing(config, "out_dir") or not config.out_dir:
        raise PifexpError("out_dir is required: pifexp table1 out_dir=DIR")
    out_dir = Path(str(config.out_dir)).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise PifexpError(f"out_dir={out_dir} is a file, not a folder")
    for key in command_line_keys:
        if key in CELL_SETTINGS:
            raise PifexpError(
                f"{key} is chosen per cell by pifexp table1 (configs/experiment/<cell>.yaml); pick "
                "cells with experiment=<cell>,<cell> instead"
            )


def write_tables(config: DictConfig) -> Report:
    """table1.{md,csv,tex} and figures/ in out_dir, from its cell folders."""
    paper: Mapping[str, Any] = plain(config, "paper")
    reporting: Mapping[str, Any] = plain(config, "reporting")
    return write_report(
        [config.out_dir], config.out_dir, paper, reporting, seeds=int(config.trainer.seeds)
    )
