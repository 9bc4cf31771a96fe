"""A finished `pifexp train` run read back to be applied to images: its seeds' networks, the voxel
grid and preprocessing they were trained on, and its task's classes; from the run folder alone."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from pifexp.data.grid import Grid
from pifexp.data.preprocess import PreprocessSpec
from pifexp.errors import PifexpError
from pifexp.experiments import rundir
from pifexp.models import NetworkSpec


@dataclass(frozen=True)
class FinishedRun:
    """A run whose every seed finished, with what its input.json and config.yaml record."""

    run_dir: Path
    task: str
    model: str
    setting: str  # full | small (Table 1's column)
    classes: tuple[str, str]
    mixed_label_subjects: str
    grid: Grid  # the networks' input grid (MNI mm)
    preprocess: PreprocessSpec  # as training used it: the same settings give the same cache key
    data_source: Mapping[str, Any]  # input.json's: source, manifest, sha256, text
    cache: Path  # the cache training read its volumes from
    seeds: tuple[tuple[int, Path], ...]  # (seed, seed folder), sorted

    @property
    def name(self) -> str:
        return f"{self.task}-{self.model}-{self.setting}"

    @property
    def manifest(self) -> Path | None:
        recorded = self.data_source.get("manifest")
        return None if not recorded else Path(recorded)

    def network(self, folder: Path) -> nn.Module:
        """The seed's tested network (network.json + best.pt), in evaluation mode."""
        return rundir.load_network(folder).eval()

    def network_spec(self, folder: Path) -> NetworkSpec:
        return rundir.read_network_spec(folder)

    def fingerprint(self, folder: Path) -> str:
        """A digest of what decides the seed's maps and predictions: its network, weights and
        split."""
        digest = hashlib.sha256()
        for name in (rundir.NETWORK_FILE, rundir.CHECKPOINT_FILE, rundir.SPLIT_FILE):
            path = Path(folder) / name
            digest.update(path.read_bytes() if path.is_file() else b"")
        return digest.hexdigest()[:16]


def open_finished_run(run_dir: str | Path) -> FinishedRun:
    """The run in run_dir. Refused with one line: a missing folder, a failed or half-written run
    (a seed folder without a whole metrics.json) and runs of earlier versions (no input.json, or a
    seed without network.json), whose input cannot be rebuilt."""
    run_dir = Path(run_dir).expanduser()
    seeds = _finished_seeds(run_dir)
    config = rundir.read_config(run_dir)
    recorded = rundir.read_input(run_dir)
    assert recorded is not None  # checked by _finished_seeds
    try:
        task, model = str(config["task"]["name"]), str(config["model"]["name"])
        classes = tuple(str(name) for name in config["task"]["classes"])
        # Table 1's column; runs that do not name it have it from their share of the data
        subset = float(config["data"]["subset"])
        setting = (config.get("setting") or {}).get("name") or ("full" if subset >= 1 else "small")
        return FinishedRun(
            run_dir=run_dir,
            task=task,
            model=model,
            setting=str(setting),
            classes=classes,  # type: ignore[arg-type]
            mixed_label_subjects=str(config["task"].get("mixed_label_subjects", "reject")),
            grid=Grid.from_json(recorded["grid"]),
            preprocess=preprocess_spec(recorded["preprocess"]),
            data_source=dict(recorded["data_source"]),
            cache=Path(recorded["cache"]),
            seeds=tuple(seeds),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise PifexpError(
            f"{run_dir}: {rundir.CONFIG_FILE} or {rundir.INPUT_FILE} lacks a setting ({error})"
        ) from None


def preprocess_spec(recorded: Mapping[str, Any]) -> PreprocessSpec:
    """input.json's preprocessing as the spec training used (JSON lists back to tuples)."""
    crop = recorded["crop"]
    return PreprocessSpec(
        **{
            **recorded,
            "crop": None if crop is None else tuple(tuple(pair) for pair in crop),
            "target_shape": tuple(int(n) for n in recorded["target_shape"]),
        }
    )


def _finished_seeds(run_dir: Path) -> list[tuple[int, Path]]:
    if not run_dir.is_dir():
        raise PifexpError(f"{run_dir} is not a folder (expected a pifexp train run folder)")
    if not rundir.is_run_dir(run_dir):
        raise PifexpError(
            f"{run_dir} holds no {rundir.CONFIG_FILE}: it is not a pifexp train run folder"
        )
    failure = rundir.read_failure(run_dir)
    if failure is not None:
        raise PifexpError(f"{run_dir} is a failed run ({rundir.FAILED_FILE}: {failure})")
    if rundir.read_input(run_dir) is None:
        raise PifexpError(
            f"{run_dir} has no {rundir.INPUT_FILE}: it was made by an earlier pifexp version, "
            "which did not record the network's input grid and preprocessing; train it again"
        )
    seeds = rundir.finished_seeds(run_dir)
    done = {folder.name for _, folder in seeds}
    unfinished = sorted(
        folder.name
        for folder in run_dir.glob("seed-*")
        if folder.is_dir() and folder.name not in done
    )
    if unfinished:
        raise PifexpError(
            f"{run_dir} is half-written: {unfinished[0]} has no complete "
            f"{rundir.METRICS_FILE} (the seed did not finish); rerun the run's pifexp train "
            "command to finish it"
        )
    if not seeds:
        raise PifexpError(f"{run_dir} has no finished seed (seed-<k>/{rundir.METRICS_FILE})")
    for _, folder in seeds:
        for name in (rundir.NETWORK_FILE, rundir.CHECKPOINT_FILE):
            if not (folder / name).is_file():
                raise PifexpError(
                    f"{folder / name} is missing: the seed was written by an earlier pifexp "
                    "version (or the file was removed); train the run again"
                )
    return seeds
