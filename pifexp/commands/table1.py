"""pifexp table1: each Hydra job trains one cell; the callback checks the batch before the jobs
start and writes and prints the tables when they are done."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pifexp.commands.failures import failure_message
from pifexp.commands.overrides import override_keys
from pifexp.experiments.cells import CellOutcome
from pifexp.experiments.report import describe_files
from pifexp.experiments.table1 import check_batch, run_cell, write_tables


def cell_command(cfg: DictConfig) -> CellOutcome:
    """One Hydra job of the table1 multirun: the cell of cfg.cell into the job's folder."""
    return run_cell(cfg, Path(HydraConfig.get().runtime.output_dir))


def _fail(error: Exception) -> None:
    """Hydra turns an exception in a callback into a warning; SystemExit still ends the command."""
    message, code = failure_message(error, "table1")
    print(message, file=sys.stderr)
    raise SystemExit(code)


def _exit_with(message: str) -> None:
    """Hydra turns an exception in a callback into a warning; SystemExit still ends the command."""
    print(f"pifexp: error: {message}", file=sys.stderr)
    raise SystemExit(1)


class Table1Callback(Callback):
    """Checks the batch's settings before the jobs start; writes the tables when they are done."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        keys = override_keys(OmegaConf.to_container(config.hydra.overrides.task))
        try:
            check_batch(config, keys)
        except Exception as error:
            _fail(error)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            report = write_tables(config)
        except Exception as error:
            _fail(error)
        print(report.markdown)
        print(f"written: {describe_files(report.files)}")
        unfinished = report.unfinished
        if len(unfinished):
            listed = "; ".join(
                f"{row.cell}: {row.status}" for row in unfinished.itertuples(index=False)
            )
            _exit_with(f"{len(unfinished)} of {len(report.table)} cells did not finish ({listed})")
