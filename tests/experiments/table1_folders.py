"""Run folders as `pifexp table1` leaves them (DIR/cells/<cell>/), written directly from chosen
numbers, so that tables and figures can be checked against known values without training."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pifexp.config_dir import config_dir

ALL_CELLS = [
    "ukb-baseline-full", "ukb-pif-full", "ukb-baseline-small", "ukb-pif-small",
    "adni-baseline-full", "adni-pif-full", "adni-baseline-small", "adni-pif-small",
    "ms-baseline-full", "ms-pif-full",
]  # fmt: skip
SOURCE = "synthetic cohort (pifexp data synth, task {task}, seed 0); not the paper's data"
TEST_LABELS = [0, 0, 1, 1, 0, 1]
TEST_SUBJECTS = ["a", "a", "b", "b", "c", "d"]  # a and c of class 0, b and d of class 1


def cell_config(cell: str, seeds: int, *overrides: str) -> dict:
    """The config a table1 cell saves (config.yaml), at a small quick-profile grid."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(
            "table1",
            overrides=[f"experiment={cell}", "profile=quick", "out_dir=unused",
                       "task.input_shape=[32,38,32]", f"trainer.seeds={seeds}", *overrides],
        )  # fmt: skip
    config = OmegaConf.to_container(cfg, resolve=True)
    for batch_key in ("out_dir", "paper", "reporting"):
        config.pop(batch_key)
    return config


def metrics(seed: int, balanced_accuracy: float, early_stopping_epoch: int) -> dict:
    return {
        "seed": seed, "balanced_accuracy": balanced_accuracy,
        "early_stopping_epoch": early_stopping_epoch, "roc_auc": 0.5 + balanced_accuracy / 4,
        "sensitivity": balanced_accuracy, "specificity": balanced_accuracy,
        "best_epoch": max(early_stopping_epoch - 1, 0), "epochs_trained": early_stopping_epoch + 1,
        "stopped_early": True, "train_images": 10, "val_images": 4, "test_images": 6,
        "seconds": 1.5, "train_subjects": 8, "val_subjects": 3, "test_subjects": 4,
    }  # fmt: skip


def write_cell(
    out_dir: Path,
    cell: str,
    seeds: Mapping[int, tuple[float, int]],
    planned: int | None = None,
    failure: str | None = None,
    split_of: str = "",
) -> Path:
    """cells/<cell>/ with config.yaml, one seed-<k>/ per entry of `seeds` ({seed: (balanced
    accuracy, early-stopping epoch)}) and summary.csv; failed.json when `failure` is given.
    Seed k's split depends on k and `split_of` only: cells with the same `split_of` pair up."""
    folder = out_dir / "cells" / cell
    config = cell_config(cell, planned if planned is not None else len(seeds))
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
    for seed, (balanced_accuracy, epoch) in seeds.items():
        seed_dir = folder / f"seed-{seed}"
        seed_dir.mkdir()
        (seed_dir / "metrics.json").write_text(json.dumps(metrics(seed, balanced_accuracy, epoch)))
        split = {"train": [f"{split_of}train-{seed}-{i}" for i in range(8)],
                 "val": [f"{split_of}val-{seed}-{i}" for i in range(3)],
                 "test": sorted({f"{split_of}{s}-{seed}" for s in TEST_SUBJECTS})}  # fmt: skip
        (seed_dir / "split.json").write_text(json.dumps(split))
        pd.DataFrame({
            "epoch": range(epoch + 1),
            "train_loss": [0.7 - 0.01 * e for e in range(epoch + 1)],
            "val_loss": [0.69 - 0.005 * e * (-1) ** e for e in range(epoch + 1)],
            "val_balanced_accuracy": [0.5] * (epoch + 1),
            "steps": [3 * (e + 1) for e in range(epoch + 1)],
            "seconds": [0.5 * (e + 1) for e in range(epoch + 1)],
        }).to_csv(seed_dir / "epochs.csv", index=False)  # fmt: skip
        probabilities = [0.2, 0.4 + seed / 100, 0.7, 0.45, 0.6, 0.9]
        pd.DataFrame({"row": range(len(TEST_LABELS)), "label": TEST_LABELS,
                      "probability": probabilities,
                      "subject_id": [f"{split_of}{s}-{seed}" for s in TEST_SUBJECTS]}).to_csv(
            seed_dir / "test_predictions.csv", index=False
        )  # fmt: skip
    if seeds:
        task = config["task"]["name"]
        pd.DataFrame({"data_source": [SOURCE.format(task=task)]}).to_csv(
            folder / "summary.csv", index=False
        )
    if failure is not None:
        (folder / "failed.json").write_text(json.dumps({"cell": cell, "error": failure}))
    return folder


def write_batch(out_dir: Path, cells: Sequence[str] = ALL_CELLS, n_seeds: int = 3) -> Path:
    """Every cell with `n_seeds` seeds; numbers differ per cell so that rows can be told apart."""
    for index, cell in enumerate(cells):
        write_cell(
            out_dir,
            cell,
            {seed: (0.6 + index / 100 + seed / 1000, 10 + index + seed) for seed in range(n_seeds)},
        )
    return out_dir
