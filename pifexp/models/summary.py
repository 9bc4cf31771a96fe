"""A network's layers, output shapes and parameter counts, as a table; arms side by side."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from pifexp.models.network import build_model
from pifexp.models.spec import NetworkSpec


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


def shared_blocks(specs: Sequence[NetworkSpec]) -> int:
    """How many leading feature blocks every network of `specs` has alike (the shared trunk)."""
    count = 0
    for blocks in zip(*(spec.features for spec in specs), strict=False):
        if any(block != blocks[0] for block in blocks[1:]):
            break
        count += 1
    return count


def parameter_groups(model: nn.Sequential, trunk_blocks: int) -> dict[str, int]:
    """A network's parameters in three parts: the trunk (its first `trunk_blocks` feature
    blocks), the last layers (its other blocks and the PIF block: where the arms differ) and the
    classifier (the Linear layers); and their total."""
    groups = {"trunk": 0, "last layers": 0, "classifier": 0}
    for name, layer in model.named_children():
        count = sum(p.numel() for p in layer.parameters())
        if isinstance(layer, nn.Linear):
            groups["classifier"] += count
        elif (_block_number(name) or trunk_blocks + 1) <= trunk_blocks:
            groups["trunk"] += count
        else:
            groups["last layers"] += count
    groups["total"] = sum(groups.values())
    return groups


def _block_number(name: str) -> int | None:
    """conv3, bn3, act3, pool3, drop3 -> 3; other layers (pif, pif_bn, fc1, ...) -> None."""
    match = BLOCK_LAYER.fullmatch(name)
    return int(match.group(1)) if match else None


BLOCK_LAYER = re.compile(r"(?:conv|bn|act|pool|drop)(\d+)")  # build_model's names


def parameter_counts(spec: NetworkSpec) -> dict[str, int]:
    """A network's parameters in all, in its PIF layer (with the layer's BatchNorm) and in its
    classifier (the Linear layers)."""
    counts = {"parameters": 0, "parameters_pif": 0, "parameters_classifier": 0}
    for name, layer in meta_model(spec).named_children():
        count = sum(p.numel() for p in layer.parameters())
        counts["parameters"] += count
        if name.startswith("pif"):
            counts["parameters_pif"] += count
        elif isinstance(layer, nn.Linear):
            counts["parameters_classifier"] += count
    return counts


def meta_model(spec: NetworkSpec) -> nn.Sequential:
    """The network built on the meta device: its layers and shapes, no memory, no compute."""
    with torch.device("meta"):
        return build_model(spec)


def arms_table(specs: Mapping[str, NetworkSpec]) -> pd.DataFrame:
    """The arms side by side (one column each): parameters of the shared trunk, of the last
    layers, of the classifier and in all (meta_model)."""
    trunk = shared_blocks(list(specs.values()))
    columns = {label: parameter_groups(meta_model(spec), trunk) for label, spec in specs.items()}
    table = pd.DataFrame(columns)
    table.index.name = f"parameters (trunk: the {trunk} shared feature blocks)"
    return table
