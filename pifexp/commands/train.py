"""pifexp train: one cell of Table 1, every seed, into the job's run folder."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from tqdm.auto import tqdm

from pifexp.experiments.run import TrainedRun, train
from pifexp.experiments.specs import run_spec


def train_command(cfg: DictConfig) -> TrainedRun:
    trained = train(run_spec(cfg), Path(HydraConfig.get().runtime.output_dir), say=tqdm.write)
    print(trained.markdown)
    return trained
