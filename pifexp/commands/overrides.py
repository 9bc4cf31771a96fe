"""The settings given on the command line, read from Hydra's overrides."""

from __future__ import annotations

from collections.abc import Iterable

from hydra.core.hydra_config import HydraConfig


def override_keys(overrides: Iterable[str]) -> set[str]:
    """The keys of Hydra overrides: `+a.b=1` -> `a.b`, `~a` -> `a`, `network@model=x` ->
    `network@model`."""
    return {str(override).split("=", 1)[0].lstrip("+~") for override in overrides}


def command_line_keys() -> set[str]:
    """The keys that this Hydra job's command line set."""
    return override_keys(HydraConfig.get().overrides.task)
