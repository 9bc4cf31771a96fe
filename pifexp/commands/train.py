"""pifexp train: one cell of Table 1, every seed, into the job's run folder."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from pifexp.experiments.run import TrainedRun, train
from pifexp.experiments.specs import run_spec


def train_command(cfg: DictConfig) -> TrainedRun:
    trained = train(run_spec(cfg), Path(HydraConfig.get().runtime.output_dir))
    print(trained.markdown)
    print(f"run folder: {trained.run_dir}")
    return trained
