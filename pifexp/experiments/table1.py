"""Table 1 as a batch: every cell is one job of a Hydra multirun (configs/table1.yaml), trained
with `pifexp train`'s code into out_dir/cells/<cell>/; the tables and figures come from those
folders afterwards (pifexp.experiments.report).

Which launcher runs the jobs (in this process, in parallel local processes, on a SLURM cluster) is
Hydra's choice (hydra/launcher=...), not this module's. A rerun of the same command on the same
out_dir resumes: `train` skips the seeds that are done, so finished cells cost only a read. A cell
that fails writes failed.json and the batch goes on; the table names the failure.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pifexp.errors import PifexpError
from pifexp.experiments.cells import CellOutcome, check_out_dir, refuse_keys, train_cell
from pifexp.experiments.report import Report, write_report
from pifexp.experiments.specs import plain

# settings that each cell chooses (configs/experiment/<cell>.yaml); an override would make every
# cell the same
CELL_SETTINGS = ("task", "model", "setting", "data.subset", "network@model")


def run_cell(cfg: DictConfig, run_dir: Path) -> CellOutcome:
    """Train one cell of Table 1 (cfg.cell) into run_dir; a failure is recorded and returned."""
    if OmegaConf.select(cfg, "cell.name") is None:
        raise PifexpError(
            "pifexp table1 runs the cells of configs/experiment/ (experiment=<cell>,...); no cell "
            "was chosen"
        )
    return train_cell(cfg, Path(run_dir), str(cfg.cell.name))


def check_batch(config: DictConfig, command_line_keys: Collection[str]) -> None:
    """Settings that would make the batch wrong, before any cell starts."""
    check_out_dir(config, "table1")
    refuse_keys(
        command_line_keys,
        CELL_SETTINGS,
        "pifexp table1 (configs/experiment/<cell>.yaml); pick cells with "
        "experiment=<cell>,<cell> instead",
    )


def write_tables(config: DictConfig) -> Report:
    """table1.{md,csv,tex} and figures/ in out_dir, from its cell folders."""
    paper: Mapping[str, Any] = plain(config, "paper")
    reporting: Mapping[str, Any] = plain(config, "reporting")
    return write_report(
        [config.out_dir], config.out_dir, paper, reporting, seeds=int(config.trainer.seeds)
    )
