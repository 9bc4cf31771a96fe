"""pifexp model summary: a network's layers, output shapes and parameter counts, then the arms of
its task side by side (trunk, last layers, classifier)."""

from __future__ import annotations

import pandas as pd
import torch
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from pifexp.commands.overrides import override_keys
from pifexp.experiments.specs import network_spec_of
from pifexp.models import NetworkSpec, build_model
from pifexp.models.summary import arms_table, summarize

# the arms compared side by side (named as in configs/arm/): the overrides that make them
ARMS = {
    "baseline": ("model=baseline",),
    "pif": ("model=pif",),
    "pif-one-patch": ("model=pif", "model.pif.single_patch=true"),
}
# settings that only one arm has: left out when the other arms are composed
ARM_KEYS = {"model", "model.pif.single_patch", "model.trunk_blocks", "model.overlap"}


def summary_command(cfg: DictConfig) -> pd.DataFrame:
    spec = network_spec_of(cfg)
    with torch.device("meta"):
        model = build_model(spec)
    table = summarize(model, spec.input_shape)
    shape = "x".join(map(str, spec.input_shape))
    print(f"{spec.architecture} ({spec.name}) for task {cfg.task.name}, input 1x{shape}")
    print(table.to_string(index=False))
    print(f"total parameters: {table.parameters.sum():,}")
    arms = arms_table(arm_specs())
    networks = HydraConfig.get().runtime.choices.get("networks")
    print(f"\nThe arms of task {cfg.task.name} ({cfg.profile.name} profile, {networks} networks):")
    print(arms.map(lambda count: f"{count:,}").to_string())
    return table


def arm_specs() -> dict[str, NetworkSpec]:
    """The networks of every arm under this command's overrides (other than the arm's own)."""
    overrides = [
        override
        for override in HydraConfig.get().overrides.task
        if not override_keys([override]) & ARM_KEYS
    ]
    return {
        label: network_spec_of(compose("model_summary", overrides=[*overrides, *arm]))
        for label, arm in ARMS.items()
    }
