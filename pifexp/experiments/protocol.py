"""Protocol variants: what changes between the fair default, the 2019 paper's per-cell settings
(`protocol.cells`) and the 2021 version's inner random search (`protocol.search`)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from pifexp.errors import ConfigError

CELL_TRAINER_KEYS = ("batch_size", "lr", "weight_decay", "patience", "ignore_before", "max_epochs")


def setting_name(subset: float) -> str:
    """Table 1's column: the full training data or the small (subset) one."""
    return "full" if subset >= 1 else "small"


def apply_cell_settings(cfg: DictConfig, overridden: Collection[str] = ()) -> None:
    """With `protocol.cells` (paper2019), copy this cell's settings into trainer, model and
    task.augment, so the saved config shows what was used. Settings named in `overridden` (given
    on the command line) keep the value given there."""
    cells = cfg.protocol.get("cells")
    if not cells:
        return
    setting = setting_name(float(cfg.data.subset))
    cell = OmegaConf.select(cells, f"{cfg.task.name}.{cfg.model.name}.{setting}")
    if cell is None:
        raise ConfigError(
            f"protocol={cfg.protocol.name} has no settings for {cfg.task.name} / {cfg.model.name} "
            f"/ {setting} (protocol.cells.{cfg.task.name}.{cfg.model.name}.{setting})"
        )
    updates = {f"trainer.{key}": cell.get(key) for key in CELL_TRAINER_KEYS}
    updates["model.dropout"] = cell.get("dropout")
    if cell.get("flip") is False:
        updates["task.augment.flip_p"] = 0.0
    if cell.get("translate") is not None:
        updates["task.augment.pif_shift"] = bool(cell.translate)
        if not cell.translate:
            updates["task.augment.shift"] = [0, 0]
    for key, value in updates.items():
        if value is not None and key not in overridden:
            OmegaConf.update(cfg, key, value)


def search_runs(cfg: DictConfig, seed: int) -> list[dict[str, Any]]:
    """Trainer settings of each training run of one seed: a single run with `trainer`'s settings,
    or with `protocol.search` (scirep2021) `runs` random draws from its `space`."""
    search = cfg.protocol.get("search")
    if not search:
        return [{}]
    space = OmegaConf.to_container(search.space)
    unknown = sorted(set(space) - set(CELL_TRAINER_KEYS))
    if unknown:
        raise ConfigError(f"protocol.search.space has unknown trainer settings: {unknown}")
    rng = np.random.default_rng([seed, int(search.seed)])
    return [
        {key: values[int(rng.integers(len(values)))] for key, values in space.items()}
        for _ in range(int(search.runs))
    ]


def search_score(epochs: pd.DataFrame, window: int) -> float:
    """The inner winner's criterion: mean validation balanced accuracy over the last epochs."""
    return float(epochs.val_balanced_accuracy.tail(window).mean())
