"""pifexp table1: each Hydra job trains one cell; the callback checks the batch before the jobs
start and writes and prints the tables when they are done."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from pifexp.commands.batch import BatchCallback
from pifexp.experiments.cells import CellOutcome
from pifexp.experiments.report import Report
from pifexp.experiments.table1 import check_batch, run_cell, write_tables


def cell_command(cfg: DictConfig) -> CellOutcome:
    """One Hydra job of the table1 multirun: the cell of cfg.cell into the job's folder."""
    return run_cell(cfg, Path(HydraConfig.get().runtime.output_dir))


class Table1Callback(BatchCallback):
    """Checks the batch's settings before the jobs start; writes the tables when they are done."""

    command = "table1"

    def start(self, config: DictConfig, command_line_keys: set[str]) -> None:
        check_batch(config, command_line_keys)

    def tables(self, config: DictConfig) -> Report:
        return write_tables(config)
