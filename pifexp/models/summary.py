"""A network's layers, output shapes and parameter counts, as a table."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn


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
