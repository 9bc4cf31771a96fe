"""Run folders read back for a report: which cell each is, its finished seeds and how it ended."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pifexp.errors import PifexpError
from pifexp.experiments import rundir

METRICS = ("balanced_accuracy", "early_stopping_epoch", "roc_auc", "sensitivity", "specificity")


def setting_name(subset: float) -> str:
    """Table 1's column of a run that does not name its setting: full data, or a small subset."""
    return "full" if subset >= 1 else "small"


@dataclass(frozen=True)
class CellRun:
    """One run folder read back: which cell it is, its finished seeds and how it ended."""

    run_dir: Path
    task: str
    model: str
    setting: str
    subset: float
    config: Mapping[str, Any]  # the run's config as saved (resolved where it could be)
    results: pd.DataFrame  # one row per finished seed (its metrics.json), sorted by seed
    seeds_planned: tuple[int, ...]
    failure: str | None  # the error that stopped the cell, from failed.json
    data_source: str | None  # summary.csv's description of the images, when the run wrote one

    @property
    def name(self) -> str:
        return f"{self.task}-{self.model}-{self.setting}"

    @property
    def complete(self) -> bool:
        return self.failure is None and set(self.seeds_planned) <= set(self.results["seed"])

    @property
    def status(self) -> str:
        if self.failure is not None:
            return f"failed: {self.failure}"
        if self.complete:
            return "complete"
        return f"incomplete: {len(self.results)} of {len(self.seeds_planned)} seeds"

    def setting_value(self, *keys: str) -> Any:
        """A value of the run's config by dotted keys, or None where it has none."""
        node: Any = self.config
        for key in keys:
            if not isinstance(node, Mapping) or key not in node:
                return None
            node = node[key]
        return node

    def seed_dirs(self) -> list[tuple[int, Path]]:
        """(seed, folder) of the seeds in `results`."""
        return rundir.finished_seeds(self.run_dir, set(self.results["seed"].astype(int)))

    def split_hashes(self) -> dict[int, str | None]:
        """Each finished seed's split digest (None where the split was not recorded)."""
        return {seed: rundir.split_hash(folder) for seed, folder in self.seed_dirs()}

    @property
    def test_train_ratio(self) -> float:
        """n_test / n_train of the seeds' splits, in subjects where recorded, else images: the
        term by which overlapping resamples widen the variance of a mean over seeds."""
        results = self.results
        for unit in ("subjects", "images"):
            test, train = f"test_{unit}", f"train_{unit}"
            if {test, train} <= set(results.columns) and results[train].notna().all():
                return float((results[test] / results[train]).mean()) if len(results) else math.nan
        return math.nan


def find_run_dirs(dirs: Iterable[str | Path]) -> list[Path]:
    """The run folders in `dirs`: each is a run folder itself, a `pifexp table1` folder (its
    cells/<cell>/) or a folder of run folders (a `pifexp train -m` sweep)."""
    found: list[Path] = []
    for given in dirs:
        folder = Path(given).expanduser()
        if not folder.is_dir():
            raise PifexpError(f"dirs: {folder} is not a folder")
        if rundir.is_run_dir(folder):
            found.append(folder)
            continue
        cells = folder / rundir.CELLS_DIR
        parent = cells if cells.is_dir() else folder
        runs = sorted(c for c in parent.iterdir() if c.is_dir() and rundir.is_run_dir(c))
        if not runs:
            raise PifexpError(
                f"dirs: {folder} holds no run folders (a folder with {rundir.CONFIG_FILE}, or "
                f"{rundir.CELLS_DIR}/<cell>/ of pifexp table1)"
            )
        found.extend(runs)
    return found


def load_run(run_dir: str | Path, seeds: int | None = None) -> CellRun:
    """Read a run folder. Its setting (full, small) is the one its config names (setting.name, or
    cell.setting in folders of earlier versions) or the one its data.subset gives. `seeds`: count
    only the first `seeds` seeds (None: every finished seed, out of the config's trainer.seeds)."""
    run_dir = Path(run_dir)
    config = rundir.read_config(run_dir)
    try:
        task = str(config["task"]["name"])
        model = str(config["model"]["name"])
        subset = float(config["data"]["subset"])
        first_seed = int(config["trainer"]["first_seed"])
        planned = int(config["trainer"]["seeds"]) if seeds is None else int(seeds)
    except (KeyError, TypeError, ValueError) as error:
        raise PifexpError(
            f"{run_dir}: its config lacks a setting that a report needs ({error})"
        ) from None
    seeds_planned = tuple(range(first_seed, first_seed + planned))
    results = rundir.read_results(run_dir, None if seeds is None else seeds_planned)
    return CellRun(
        run_dir=run_dir,
        task=task,
        model=model,
        setting=_setting(config, subset),
        subset=subset,
        config=config,
        results=results,
        seeds_planned=seeds_planned,
        failure=rundir.read_failure(run_dir),
        data_source=rundir.read_data_source(run_dir),
    )


def _setting(config: Mapping[str, Any], subset: float) -> str:
    for group, key in (("setting", "name"), ("cell", "setting")):
        node = config.get(group)
        if isinstance(node, Mapping) and node.get(key):
            return str(node[key])
    return setting_name(subset)


def load_runs(dirs: Iterable[str | Path], seeds: int | None = None) -> list[CellRun]:
    """Every run folder in `dirs` (see find_run_dirs); two folders of one cell are an error."""
    runs = [load_run(folder, seeds) for folder in find_run_dirs(dirs)]
    seen: dict[str, Path] = {}
    for run in runs:
        if run.name in seen:
            raise PifexpError(
                f"{seen[run.name]} and {run.run_dir} hold the same cell ({run.name}); report them "
                "separately"
            )
        seen[run.name] = run.run_dir
    return runs
