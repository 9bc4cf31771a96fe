"""The settings given on the command line, read from Hydra's overrides."""

from __future__ import annotations

from collections.abc import Iterable

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser


def override_keys(overrides: Iterable[str]) -> set[str]:
    """The keys of Hydra overrides: `+a.b=1` -> `a.b`, `~a` -> `a`, `network@model=x` ->
    `network@model`."""
    return {str(override).split("=", 1)[0].lstrip("+~") for override in overrides}


def command_line_keys() -> set[str]:
    """The keys that this Hydra job's command line set."""
    return override_keys(HydraConfig.get().overrides.task)


def first_of_each_sweep(overrides: Iterable[str]) -> list[str]:
    """The overrides with every sweep (`k=a,b,c`) cut to its first value: one job's settings, to
    compose before a multirun starts. Hydra reads a multirun's mode from the composed config, so
    an override that does not compose makes it report the sweeps as ambiguous instead."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [
        f"{override.get_key_element()}={next(iter(override.sweep_string_iterator()))}"
        if override.is_sweep_override()
        else override.input_line
        for override in parsed
    ]
