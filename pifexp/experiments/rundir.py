"""The run folder: the one module that knows its file names and formats, and reads and writes them.

RUN_DIR/                    one `pifexp train` run = one cell: every seed of task x model x protocol
  config.yaml               the resolved config (data.manifest filled in for synthetic data)
  input.json                the network's input: voxel grid (shape, affine in MNI mm),
                            preprocessing, data source; written before the first seed
  results.csv               one row per finished seed (RESULT_COLUMNS)
  summary.md, summary.csv   mean and std over seeds; the data source
  failed.json               pifexp table1: the error that stopped this cell
  seed-<k>/ split.json      subject ids per partition
            epochs.csv      losses and validation balanced accuracy per epoch
            network.json    the network spec: with best.pt it rebuilds the network
            best.pt         the tested state (a state dict; torch.load(weights_only=True))
            test_predictions.csv, search.csv (an inner search's runs),
            covariates.csv  the covariates and classes per partition
            metrics.json    the seed's test metrics, written last: the seed is done
A `pifexp table1` folder holds one run folder per cell under cells/<cell>/.

Every file is written atomically (pifexp.files), so a killed run leaves only whole files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import OmegaConf
from torch import nn

from pifexp.data.grid import Grid
from pifexp.data.splits import PARTITIONS
from pifexp.errors import PifexpError
from pifexp.files import write_atomic, write_json_atomic, write_text_atomic
from pifexp.models import NetworkSpec, build_model

CONFIG_FILE = "config.yaml"
JOB_CONFIG_FILE = Path(".hydra") / "config.yaml"  # written by Hydra before a job starts
INPUT_FILE = "input.json"
RESULTS_FILE = "results.csv"
SUMMARY_CSV, SUMMARY_MD = "summary.csv", "summary.md"
FAILED_FILE = "failed.json"
SPLIT_FILE = "split.json"
EPOCHS_FILE = "epochs.csv"
NETWORK_FILE = "network.json"
CHECKPOINT_FILE = "best.pt"
PREDICTIONS_FILE = "test_predictions.csv"
SEARCH_FILE = "search.csv"
COVARIATES_FILE = "covariates.csv"
TENSORBOARD_DIR = "tensorboard"
METRICS_FILE = "metrics.json"
CELLS_DIR = "cells"
RESULT_COLUMNS = [
    "seed", "balanced_accuracy", "early_stopping_epoch", "roc_auc", "sensitivity", "specificity",
    "best_epoch", "epochs_trained", "stopped_early", "train_images", "val_images", "test_images",
    "seconds", "train_subjects", "val_subjects", "test_subjects",
]  # fmt: skip
# settings that change how a run is watched, or how many seeds it has, not what a seed computes
NOT_COMPARED = {
    "trainer.seeds", "trainer.progress", "trainer.num_threads", "data.workers", "data.progress",
    "trainer.tensorboard",
}  # fmt: skip


# ----------------------------------------------------------------------------- the run


def seed_dir(run_dir: Path, seed: int) -> Path:
    return Path(run_dir) / f"seed-{seed}"


def is_run_dir(folder: Path) -> bool:
    return any((folder / name).is_file() for name in (CONFIG_FILE, FAILED_FILE, JOB_CONFIG_FILE))


def prepare(run_dir: Path, config: Mapping[str, Any]) -> None:
    """Save the run's resolved config, or check that a folder being resumed was made with the
    same one (NOT_COMPARED aside)."""
    saved_path = Path(run_dir) / CONFIG_FILE
    if saved_path.exists():
        differences = _differences(read_config(run_dir), dict(config))
        if differences:
            shown = "; ".join(f"{key}: {old!r} -> {new!r}" for key, old, new in differences[:3])
            raise PifexpError(
                f"{run_dir} holds a run with other settings ({shown}); resume it with the same "
                "settings or choose another folder (hydra.run.dir=...)"
            )
        return
    write_text_atomic(saved_path, OmegaConf.to_yaml(OmegaConf.create(dict(config))))


def _differences(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [
            diff
            for key in keys
            if f"{prefix}{key}" not in NOT_COMPARED
            for diff in _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        ]
    return [] if old == new else [(prefix.rstrip("."), old, new)]


def read_config(run_dir: Path) -> dict[str, Any]:
    """The run's config: config.yaml, or Hydra's job config where training never started. A failed
    job's own config comes first: the config.yaml in its folder may be another run's, the very
    reason it failed."""
    run_dir = Path(run_dir)
    failed = (run_dir / FAILED_FILE).is_file()
    for name in (JOB_CONFIG_FILE, CONFIG_FILE) if failed else (CONFIG_FILE, JOB_CONFIG_FILE):
        path = run_dir / name
        if not path.is_file():
            continue
        try:
            loaded = OmegaConf.load(path)
        except Exception as error:  # a YAML or OmegaConf error: the file is not a config
            raise PifexpError(f"{path} cannot be read as a config ({error})") from None
        try:
            return OmegaConf.to_container(loaded, resolve=True)  # type: ignore[return-value]
        except Exception:  # a job's config before training may hold unresolvable settings
            return OmegaConf.to_container(loaded, resolve=False)  # type: ignore[return-value]
    raise PifexpError(f"{run_dir} holds no {CONFIG_FILE}: it is not a run folder")


def write_input(
    run_dir: Path, grid: Grid, preprocess: Mapping[str, Any], source: Mapping, cache: Path
) -> None:
    """What the network sees, recorded at training time for every later reader: the voxel grid,
    the preprocessing, where the images came from and the cache they were read from."""
    record = {
        "grid": grid.to_json(),
        "preprocess": dict(preprocess),
        "data_source": dict(source),
        "cache": str(cache),
    }
    write_json_atomic(Path(run_dir) / INPUT_FILE, record)


def check_same_input(run_dir: Path, source: Mapping[str, Any]) -> None:
    """A run being resumed must read the same cohort: the manifest's digest recorded when it
    started must be the one now (a manifest rewritten in place would mix two cohorts' seeds)."""
    recorded = read_input(run_dir)
    if recorded is None or not any(seed_dirs_with_metrics(run_dir)):
        return
    before = recorded["data_source"].get("sha256")
    if before != source["sha256"]:
        raise PifexpError(
            f"{run_dir} holds seeds trained on another cohort: {source['manifest']} changed since "
            f"(sha256 {before} -> {source['sha256']}); resume with the same manifest, or choose "
            "another folder (hydra.run.dir=...)"
        )


def seed_dirs_with_metrics(run_dir: Path) -> list[Path]:
    return sorted(path.parent for path in Path(run_dir).glob(f"seed-*/{METRICS_FILE}"))


def read_input(run_dir: Path) -> dict[str, Any] | None:
    """input.json; None for runs of earlier versions, which did not write it."""
    path = Path(run_dir) / INPUT_FILE
    return _read_json(path) if path.is_file() else None


def read_input_grid(run_dir: Path) -> Grid | None:
    """The input grid recorded at training time; None for runs of earlier versions."""
    recorded = read_input(run_dir)
    return None if recorded is None else Grid.from_json(recorded["grid"])


def write_tables(run_dir: Path, results: pd.DataFrame, summary: pd.DataFrame, text: str) -> None:
    write_atomic(Path(run_dir) / RESULTS_FILE, lambda tmp: results.to_csv(tmp, index=False))
    write_atomic(Path(run_dir) / SUMMARY_CSV, lambda tmp: summary.to_csv(tmp, index=False))
    write_text_atomic(Path(run_dir) / SUMMARY_MD, text)


def read_data_source(run_dir: Path) -> str | None:
    """summary.csv's description of where the images came from, when the run wrote one."""
    path = Path(run_dir) / SUMMARY_CSV
    if not path.is_file():
        return None
    summary = pd.read_csv(path)
    if "data_source" not in summary or summary.empty:
        return None
    return str(summary["data_source"].iloc[0])


def write_failure(run_dir: Path, cell: str, message: str) -> None:
    write_json_atomic(Path(run_dir) / FAILED_FILE, {"cell": cell, "error": message})


def clear_failure(run_dir: Path) -> None:
    (Path(run_dir) / FAILED_FILE).unlink(missing_ok=True)


def read_failure(run_dir: Path) -> str | None:
    """The error that stopped the cell (failed.json), or None."""
    path = Path(run_dir) / FAILED_FILE
    if not path.is_file():
        return None
    try:
        return str(json.loads(path.read_text())["error"])
    except (OSError, ValueError, KeyError) as error:
        return f"(the failure record {path} cannot be read: {error})"


# ----------------------------------------------------------------------------- one seed


def seed_done(run_dir: Path, seed: int) -> bool:
    """A seed is done when its metrics.json reads back whole (written last, atomically); an
    empty, truncated or foreign one means the seed is trained again."""
    metrics = _whole_metrics(seed_dir(run_dir, seed))
    return metrics is not None and metrics["seed"] == seed


def _whole_metrics(folder: Path) -> dict[str, Any] | None:
    """The seed's metrics, or None where metrics.json is missing, unreadable or incomplete."""
    try:
        metrics = json.loads((Path(folder) / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict) or not set(RESULT_COLUMNS[:6]) <= set(metrics):
        return None
    if isinstance(metrics["seed"], bool) or not isinstance(metrics["seed"], int):
        return None
    return metrics


def write_split(folder: Path, split: Mapping[str, Sequence[str]]) -> Path:
    return write_json_atomic(
        Path(folder) / SPLIT_FILE, {name: list(members) for name, members in split.items()}
    )


def read_split(folder: Path) -> dict[str, list[str]]:
    path = Path(folder) / SPLIT_FILE
    split = _read_json(path)
    if sorted(split) != sorted(PARTITIONS):
        raise PifexpError(f"split file {path} must hold {', '.join(PARTITIONS)}")
    return split


def split_hash(folder: Path) -> str | None:
    """A digest of the seed's split (None where it was not recorded): two seeds with the same
    digest trained, validated and tested on the same subjects."""
    if not (Path(folder) / SPLIT_FILE).is_file():
        return None
    canonical = json.dumps(read_split(folder), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def write_epochs(folder: Path, epochs: pd.DataFrame) -> None:
    write_atomic(Path(folder) / EPOCHS_FILE, lambda tmp: epochs.to_csv(tmp, index=False))


def append_epoch(path: Path, row: Mapping[str, Any]) -> None:
    """One more row of a running training's epochs table (epochs.csv, or epochs-run-<i>.csv of
    an inner search's run i), so that a run can be watched while it trains; the first epoch
    starts the file afresh. The seed's final epochs.csv is then written whole (write_epochs)."""
    first = int(row["epoch"]) == 0 or not Path(path).is_file()
    frame = pd.DataFrame([dict(row)])
    with open(path, "w" if first else "a", newline="") as handle:
        frame.to_csv(handle, header=first, index=False)


def tensorboard_dir(folder: Path, run: int | None) -> Path:
    """TensorBoard's event files of a seed (tensorboard/), or of an inner search's run i."""
    return Path(folder) / TENSORBOARD_DIR / ("" if run is None else f"run-{run}")


def live_epochs_path(folder: Path, run: int | None) -> Path:
    """Where a training appends its epochs: epochs.csv, or epochs-run-<run>.csv in a search."""
    return Path(folder) / (EPOCHS_FILE if run is None else f"epochs-run-{run}.csv")


def read_epochs(folder: Path) -> pd.DataFrame:
    return pd.read_csv(Path(folder) / EPOCHS_FILE)


def write_covariates(folder: Path, balance: pd.DataFrame) -> None:
    """covariates.csv: the covariates and classes per partition of the seed's split."""
    write_atomic(Path(folder) / COVARIATES_FILE, lambda tmp: balance.to_csv(tmp, index=False))


def write_search(folder: Path, search: pd.DataFrame) -> None:
    write_atomic(Path(folder) / SEARCH_FILE, lambda tmp: search.to_csv(tmp, index=False))


def write_checkpoint(folder: Path, state: Mapping[str, torch.Tensor], network: NetworkSpec) -> None:
    """best.pt (the state dict, on the CPU) and network.json (the spec that rebuilds it)."""
    write_json_atomic(Path(folder) / NETWORK_FILE, network.to_json())
    write_atomic(
        Path(folder) / CHECKPOINT_FILE,
        lambda tmp: torch.save({key: value.cpu() for key, value in state.items()}, tmp),
    )


def read_network_spec(folder: Path) -> NetworkSpec:
    return NetworkSpec.from_json(_read_json(Path(folder) / NETWORK_FILE))


def load_network(folder: Path) -> nn.Module:
    """The seed's tested network from network.json and best.pt alone (no config needed)."""
    model = build_model(read_network_spec(folder))
    path = Path(folder) / CHECKPOINT_FILE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as error:
        raise PifexpError(f"{path} cannot be read ({error})") from None
    model.load_state_dict(state)
    return model


def write_predictions(folder: Path, predictions: pd.DataFrame) -> None:
    write_atomic(Path(folder) / PREDICTIONS_FILE, lambda tmp: predictions.to_csv(tmp, index=False))


def read_predictions(folder: Path) -> pd.DataFrame:
    return pd.read_csv(Path(folder) / PREDICTIONS_FILE)


def write_metrics(folder: Path, metrics: Mapping[str, Any]) -> None:
    """metrics.json, the seed's last file: from now on the seed counts as done."""
    write_json_atomic(Path(folder) / METRICS_FILE, dict(metrics))


def read_metrics(folder: Path) -> dict[str, Any]:
    return _read_json(Path(folder) / METRICS_FILE)


def finished_seeds(run_dir: Path, only: Iterable[int] | None = None) -> list[tuple[int, Path]]:
    """(seed, seed folder) of every finished seed, sorted by seed; `only`: these seeds at most."""
    wanted = None if only is None else set(only)
    found = []
    for path in Path(run_dir).glob(f"seed-*/{METRICS_FILE}"):
        metrics = _whole_metrics(path.parent)
        if metrics is None or path.parent.name != f"seed-{metrics['seed']}":
            continue  # not finished (or not this folder's): the seed is trained again
        if wanted is None or metrics["seed"] in wanted:
            found.append((metrics["seed"], path.parent))
    return sorted(found)


def read_results(run_dir: Path, only: Iterable[int] | None = None) -> pd.DataFrame:
    """One row per finished seed (its metrics.json), sorted by seed."""
    rows = [read_metrics(folder) for _, folder in finished_seeds(run_dir, only)]
    if not rows:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    return pd.DataFrame(rows).sort_values("seed", kind="stable").reset_index(drop=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise PifexpError(f"{path} cannot be read ({error})") from None


# ----------------------------------------------------------------------------- applying a run

INTERPRETATION_DIR = "interpretation"  # pifexp interpret's default output, in the run's folder
PREDICTIONS_DIR = "predictions"  # pifexp predict's default output, in the run's folder


def prediction_path(run_dir: Path, manifest: Path) -> Path:
    """pifexp predict's default table: one file per manifest (its name and a digest of its path,
    so that two manifests of the same name never share a file)."""
    manifest = Path(manifest).expanduser().resolve()
    digest = hashlib.sha256(str(manifest).encode()).hexdigest()[:8]
    return Path(run_dir) / PREDICTIONS_DIR / f"{manifest.stem}-{digest}.csv"
