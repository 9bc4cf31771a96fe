"""The 2021 version's inner random search (protocol.search): per seed, several trainings on the
same split with settings drawn from a space, and the score that picks the one tested.

The 2019 paper's per-cell settings need no code: Hydra composes them from
configs/protocol_cells/paper2019/ (see configs/train.yaml)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pifexp.errors import ConfigError

# the trainer settings that a search may draw
SEARCH_KEYS = ("batch_size", "lr", "weight_decay", "patience", "ignore_before", "max_epochs")


@dataclass(frozen=True)
class SearchSpec:
    runs: int  # trainings per seed
    window: int  # the winner: best mean validation balanced accuracy over its last epochs
    seed: int  # with the repeat's seed, draws the inner runs' settings
    space: Mapping[str, Sequence[Any]]  # trainer setting -> values to draw from

    def __post_init__(self) -> None:
        unknown = sorted(set(self.space) - set(SEARCH_KEYS))
        if unknown:
            raise ConfigError(f"protocol.search.space has unknown trainer settings: {unknown}")
        if self.runs < 1 or self.window < 1:
            raise ConfigError(
                f"protocol.search.runs={self.runs} and window={self.window} must be >= 1"
            )
        empty = sorted(key for key, values in self.space.items() if not len(values))
        if empty:
            raise ConfigError(f"protocol.search.space has no values for {empty}")


def search_runs(search: SearchSpec | None, seed: int) -> list[dict[str, Any]]:
    """Trainer settings of each training run of one seed: a single run with the trainer's own
    settings (no search), or `search.runs` random draws from its space."""
    if search is None:
        return [{}]
    rng = np.random.default_rng([seed, search.seed])
    return [
        {key: values[int(rng.integers(len(values)))] for key, values in search.space.items()}
        for _ in range(search.runs)
    ]


def search_score(epochs: pd.DataFrame, window: int) -> float:
    """The inner winner's criterion: mean validation balanced accuracy over the last epochs."""
    return float(epochs.val_balanced_accuracy.tail(window).mean())
