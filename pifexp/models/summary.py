"""`pifexp model summary`: layers, output shapes and parameter counts of a configured network."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from pifexp.models.network import build_model


def summarize(model: nn.Sequential, input_shape: Sequence[int]) -> pd.DataFrame:
    """One row per layer: name, type, output shape (per sample) and parameter count."""
    rows = []
    # on a model built on the meta device this costs no memory and no compute
    x = torch.empty(1, 1, *input_shape, device=next(model.parameters()).device)
    with torch.no_grad():
        for name, layer in model.named_children():
            x = layer(x)
            rows.append(
                {
                    "layer": name,
                    "type": type(layer).__name__,
                    "output_shape": "x".join(map(str, x.shape[1:])),
                    "parameters": sum(p.numel() for p in layer.parameters()),
                }
            )
    return pd.DataFrame(rows)


def summary_command(cfg: DictConfig) -> pd.DataFrame:
    input_shape = list(cfg.task.input_shape)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    with torch.device("meta"):
        model = build_model(model_cfg, input_shape)
    table = summarize(model, input_shape)
    print(
        f"{cfg.model.architecture} ({cfg.model.name}) for task {cfg.task.name}, "
        f"input 1x{'x'.join(map(str, input_shape))}"
    )
    print(table.to_string(index=False))
    print(f"total parameters: {table.parameters.sum():,}")
    return table
