"""A command's own short help: what it does, its main settings with the values they would have
(defaults, or as the rest of the command line sets them), its config groups and their choices,
and examples. Read from the configs themselves, so it never disagrees with them."""

from __future__ import annotations

from collections.abc import Sequence

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pifexp import __version__
from pifexp.config_dir import config_dir, group_options

# groups that follow from others (shown with their choice, not as choices of their own)
DERIVED_GROUPS = ("network@model", "protocol_cells")


def version_line() -> str:
    return f"pifexp {__version__}"


def command_help(
    words: Sequence[str],
    summary: str,
    config_name: str,
    settings: Sequence[str],
    examples: Sequence[str],
    overrides: Sequence[str],
    positional: str | None = None,
) -> str:
    name = " ".join(words)
    # bare arguments before the overrides: `dirs` -> DIR..., `run_dir` -> RUN_DIR
    bare = {"dirs": " DIR...", None: ""}.get(positional, f" {str(positional).upper()}")
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    chosen = OmegaConf.to_container(cfg.hydra.runtime.choices).items()
    # Hydra lists the choices last-composed first: show them in the defaults list's order
    choices = {group: choice for group, choice in reversed(chosen) if not group.startswith("hydra")}
    lines = [f"pifexp {name}: {summary}", "",
             f"usage: pifexp {name}{bare} [group=option ...] [key=value ...] [-m]", ""]  # fmt: skip
    if settings:
        lines.append("main settings (their values with this command line):")
        width = max(len(key) for key in settings)
        for key in settings:
            value = OmegaConf.select(cfg, key, default="(not set)", throw_on_missing=False)
            lines.append(f"  {key:<{width}} = {_show(value)}")
        lines.append("")
    if choices:
        lines.append("config groups (choose with group=option):")
        width = max(len(group) for group in choices)
        for group, choice in choices.items():
            options = group_options(group)
            listed = f"  [{' | '.join(options)}]" if options and group not in DERIVED_GROUPS else ""
            lines.append(f"  {group:<{width}} = {choice}{listed}")
        lines.append("")
    if examples:
        lines += ["examples:", *(f"  {example}" for example in examples), ""]
    lines.append(
        f"all settings: pifexp {name} --cfg job; Hydra's own help: pifexp {name} --hydra-help"
    )
    return "\n".join(lines)


def _show(value: object) -> str:
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    return "null" if value is None else str(value)
