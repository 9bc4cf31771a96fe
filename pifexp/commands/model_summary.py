"""pifexp model summary: a network's layers, output shapes and parameter counts."""

from __future__ import annotations

import pandas as pd
import torch
from omegaconf import DictConfig

from pifexp.experiments.specs import network_spec_of
from pifexp.models import build_model
from pifexp.models.summary import summarize


def summary_command(cfg: DictConfig) -> pd.DataFrame:
    spec = network_spec_of(cfg)
    with torch.device("meta"):
        model = build_model(spec)
    table = summarize(model, spec.input_shape)
    shape = "x".join(map(str, spec.input_shape))
    print(f"{spec.architecture} ({spec.name}) for task {cfg.task.name}, input 1x{shape}")
    print(table.to_string(index=False))
    print(f"total parameters: {table.parameters.sum():,}")
    return table
