"""pifexp study <name>: each Hydra job trains one cell of the study (a level and an arm); the
callback checks the study before the jobs start and writes and prints its tables when they are
done."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from pifexp.commands.batch import BatchCallback
from pifexp.experiments.cells import CellOutcome
from pifexp.experiments.report.study_writing import StudyReport
from pifexp.experiments.study import run_cell, start_study, write_tables


def cell_command(cfg: DictConfig) -> CellOutcome:
    """One Hydra job of the study's multirun: its cell into the job's folder."""
    return run_cell(cfg, Path(HydraConfig.get().runtime.output_dir))


class StudyCallback(BatchCallback):
    """Checks the study and records its settings before the jobs start; writes its tables when
    they are done."""

    command = "study"

    def start(self, config: DictConfig, command_line_keys: set[str]) -> None:
        start_study(config, command_line_keys)

    def tables(self, config: DictConfig) -> StudyReport:
        return write_tables(config)
