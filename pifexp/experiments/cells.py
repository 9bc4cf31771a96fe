"""The cells of a batch (Table 1, a study): each is one job of a Hydra multirun that trains one
`pifexp train` run into its own folder. A failure is recorded in the cell's folder and returned,
so that the other cells of the batch still run; a rerun retries it."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from pifexp.errors import PifexpError
from pifexp.experiments import rundir
from pifexp.experiments.run import train
from pifexp.experiments.specs import run_spec

log = logging.getLogger(__name__)

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


def train_cell(cfg: DictConfig, run_dir: Path, name: str) -> CellOutcome:
    """Train the cell `name` into run_dir. A failure is written to run_dir/failed.json and
    returned, not raised."""
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


def check_out_dir(config: DictConfig, command: str) -> Path:
    """The batch's out_dir, which it needs and which must be a folder."""
    if OmegaConf.is_missing(config, "out_dir") or not config.out_dir:
        raise PifexpError(f"out_dir is required: pifexp {command} out_dir=DIR")
    out_dir = Path(str(config.out_dir)).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise PifexpError(f"out_dir={out_dir} is a file, not a folder")
    return out_dir


def refuse_keys(command_line_keys: Collection[str], chosen: Collection[str], how: str) -> None:
    """Settings that the batch chooses per cell cannot be given for all of them."""
    for key in command_line_keys:
        if key in chosen:
            raise PifexpError(f"{key} is chosen per cell by {how}")
