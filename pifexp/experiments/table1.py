"""pifexp table1: every cell of Table 1 as one Hydra multirun, then the tables and figures.

configs/table1.yaml makes the command a multirun over `experiment` (one config per cell, in
configs/experiment/), so each Hydra job trains one cell with `pifexp train`'s code into
out_dir/cells/<cell>/. Which launcher runs the jobs (in this process, in parallel local processes,
on a SLURM cluster) is Hydra's choice (hydra/launcher=...), not this module's. When the jobs are
done, Table1Callback writes table1.{md,csv,tex} and figures/ from the cell folders.

A rerun of the same command on the same out_dir resumes: `train` skips the seeds that are done, so
finished cells cost only a read. A cell that fails writes cells/<cell>/failed.json and the batch
goes on; the table names the failure and the command exits non-zero.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Collection
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pifexp.errors import PifexpError
from pifexp.experiments.report import FAILED_FILE, Report, describe_files, write_report
from pifexp.experiments.run import train
from pifexp.files import write_json_atomic

log = logging.getLogger(__name__)

# settings that each cell chooses (configs/experiment/<cell>.yaml); an override would make every
# cell the same
CELL_SETTINGS = ("task", "model", "data.subset", "network@model")
# settings of the batch, not of a cell's training: left out of the cell's saved config, so that
# changing them (or moving out_dir) does not stop a rerun from resuming the cells
BATCH_SETTINGS = ("out_dir", "paper", "reporting")


def training_config(cfg: DictConfig) -> DictConfig:
    """The cell's `pifexp train` config: cfg without the batch's own settings."""
    keys = [key for key in cfg if key not in BATCH_SETTINGS]
    return OmegaConf.masked_copy(cfg, keys)


def run_cell(cfg: DictConfig, run_dir: Path, overridden: Collection[str] = ()) -> dict[str, Any]:
    """Train one cell into run_dir (`overridden`: the settings given on the command line, as for
    `train`). A failure is written to run_dir/failed.json and returned, not raised, so that the
    other cells of the batch still run."""
    name = str(cfg.cell.name)
    failed = Path(run_dir) / FAILED_FILE
    failed.unlink(missing_ok=True)  # a retry: the cell's earlier failure no longer stands
    try:
        results = train(training_config(cfg), Path(run_dir), overridden)
    except Exception as error:  # any failure of one cell is recorded; the batch goes on
        message = str(error) if isinstance(error, PifexpError) else _describe(error)
        log.error("cell %s failed: %s", name, message)
        if not isinstance(error, PifexpError):
            log.error("%s", "".join(traceback.format_exception(error)))
        write_json_atomic(failed, {"cell": name, "error": message})
        return {"cell": name, "status": "failed", "error": message}
    return {"cell": name, "status": "complete", "seeds": len(results)}


def _describe(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def cell_command(cfg: DictConfig) -> dict[str, Any]:
    """One Hydra job of the table1 multirun: the cell of cfg.cell into the job's folder."""
    if OmegaConf.select(cfg, "cell.name") is None:
        raise PifexpError(
            "pifexp table1 runs the cells of configs/experiment/ (experiment=<cell>,...); no cell "
            "was chosen"
        )
    hydra_cfg = HydraConfig.get()
    overridden = {override.split("=", 1)[0].lstrip("+~") for override in hydra_cfg.overrides.task}
    return run_cell(cfg, Path(hydra_cfg.runtime.output_dir), overridden)


def check_batch(config: DictConfig) -> None:
    """Settings that would make the batch wrong, before any cell starts."""
    if OmegaConf.is_missing(config, "out_dir") or not config.out_dir:
        raise PifexpError("out_dir is required: pifexp table1 out_dir=DIR")
    out_dir = Path(str(config.out_dir)).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise PifexpError(f"out_dir={out_dir} is a file, not a folder")
    for override in OmegaConf.to_container(config.hydra.overrides.task):
        key = str(override).split("=", 1)[0].lstrip("+~")
        if key in CELL_SETTINGS:
            raise PifexpError(
                f"{key} is chosen per cell by pifexp table1 (configs/experiment/<cell>.yaml); pick "
                "cells with experiment=<cell>,<cell> instead"
            )


def write_tables(config: DictConfig) -> Report:
    """table1.{md,csv,tex} and figures/ in out_dir, from its cell folders."""
    plain = OmegaConf.to_container
    return write_report(
        [config.out_dir],
        config.out_dir,
        plain(config.paper, resolve=True),
        plain(config.reporting, resolve=True),
        seeds=int(config.trainer.seeds),
    )


def _exit_with(message: str) -> None:
    """Hydra turns an exception in a callback into a warning; SystemExit still ends the command."""
    print(f"pifexp: error: {message}", file=sys.stderr)
    raise SystemExit(1)


class Table1Callback(Callback):
    """Checks the batch's settings before the jobs start; writes the tables when they are done."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_batch(config)
        except PifexpError as error:
            _exit_with(str(error))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            report = write_tables(config)
        except PifexpError as error:
            _exit_with(str(error))
        print(report.markdown)
        print(f"written: {describe_files(report.files)}")
        unfinished = report.unfinished
        if len(unfinished):
            listed = "; ".join(
                f"{row.cell}: {row.status}" for row in unfinished.itertuples(index=False)
            )
            _exit_with(f"{len(unfinished)} of {len(report.table)} cells did not finish ({listed})")
