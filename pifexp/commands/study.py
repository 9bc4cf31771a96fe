"""pifexp study <name>: each Hydra job trains one cell of the study (a level and an arm); the
callback checks the study before the jobs start and writes and prints its tables when they are
done."""

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
from pifexp.experiments.study import run_cell, start_study, write_tables


def cell_command(cfg: DictConfig) -> CellOutcome:
    """One Hydra job of the study's multirun: its cell into the job's folder."""
    return run_cell(cfg, Path(HydraConfig.get().runtime.output_dir))


def _fail(error: Exception) -> None:
    """Hydra turns an exception in a callback into a warning; SystemExit still ends the command."""
    message, code = failure_message(error, "study")
    print(message, file=sys.stderr)
    raise SystemExit(code)


class StudyCallback(Callback):
    """Checks the study's settings before the jobs start; writes its tables when they are done."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        keys = override_keys(OmegaConf.to_container(config.hydra.overrides.task))
        try:
            start_study(config, keys)
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
            print(
                f"pifexp: error: {len(unfinished)} of {len(report.table)} cells did not finish "
                f"({listed})",
                file=sys.stderr,
            )
            raise SystemExit(1)
