"""One run = one cell of Table 1: every seed of a task x model x protocol, written to a run folder.

RUN_DIR/
  config.yaml              the resolved config (data.manifest filled in for synthetic data)
  results.csv              one row per finished seed
  summary.md, summary.csv  mean and std of the balanced accuracy and early-stopping epoch
  seed-<k>/ split.json, epochs.csv, best.pt, metrics.json (written last: the seed is done)

Every file is written atomically, so a killed run leaves only whole files, and rerunning the same
command on the same folder skips the seeds that are done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from tqdm.auto import tqdm

from pifexp.data.augment import augment_settings
from pifexp.data.batches import CohortBatches, cohort_batches
from pifexp.data.cache import CachedCohort
from pifexp.data.cohort import prepare_cohort, split_cohort
from pifexp.data.splits import partition_rows, write_split
from pifexp.data.synthetic import ensure_synthetic_cohort
from pifexp.errors import ConfigError, PifexpError
from pifexp.experiments.protocol import apply_cell_settings, search_runs, search_score
from pifexp.files import write_atomic, write_json_atomic, write_text_atomic
from pifexp.models import build_model
from pifexp.training.early_stopping import EarlyStopping
from pifexp.training.loop import FitResult, evaluate, fit, precision_context
from pifexp.training.metrics import binary_metrics

log = logging.getLogger(__name__)

RESULT_COLUMNS = [
    "seed", "balanced_accuracy", "early_stopping_epoch", "roc_auc", "sensitivity", "specificity",
    "best_epoch", "epochs_trained", "stopped_early", "train_images", "val_images", "test_images",
    "seconds",
]  # fmt: skip
# settings that change how a run is watched, or how many seeds it has, not what a seed computes
NOT_COMPARED = {
    "trainer.seeds", "trainer.progress", "trainer.num_threads", "data.workers", "data.progress",
}  # fmt: skip


def resolve_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda, but no CUDA device is available")
    if setting not in ("cpu", "cuda"):
        raise ConfigError(f"trainer.device={setting!r} must be auto, cpu or cuda")
    return torch.device(setting)


def seed_everything(seed: int, device: torch.device, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if device.type == "cuda":
        if deterministic:  # cuBLAS needs this before its first deterministic call
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
        torch.use_deterministic_algorithms(deterministic, warn_only=True)


def data_source(cfg: DictConfig) -> dict[str, Any]:
    """Where the images came from, for every table that reports on them."""
    manifest = Path(cfg.data.manifest)
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]
    if cfg.data.source == "synthetic":
        text = (
            f"synthetic cohort (pifexp data synth, task {cfg.task.name}, seed "
            f"{cfg.data.synthetic.seed}, profile {cfg.profile.name}); not the paper's data"
        )
    else:
        text = f"manifest {manifest} (sha256 {digest})"
    return {
        "source": str(cfg.data.source),
        "manifest": str(manifest),
        "sha256": digest,
        "text": text,
    }


def prepare_run_dir(cfg: DictConfig, run_dir: Path) -> None:
    """Save the resolved config, or check that a folder being resumed was made with the same one."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    saved_path = run_dir / "config.yaml"
    if saved_path.exists():
        saved = OmegaConf.to_container(OmegaConf.load(saved_path))
        differences = _differences(saved, resolved)
        if differences:
            shown = "; ".join(f"{key}: {old!r} -> {new!r}" for key, old, new in differences[:3])
            raise PifexpError(
                f"{run_dir} holds a run with other settings ({shown}); resume it with the same "
                "settings or choose another folder (hydra.run.dir=...)"
            )
        return
    write_text_atomic(saved_path, OmegaConf.to_yaml(OmegaConf.create(resolved)))


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


def run_seed(
    cfg: DictConfig,
    cohort: CachedCohort,
    seed: int,
    seed_dir: Path,
    device: torch.device,
    on_first_epoch: Callable[[float], None] = lambda seconds: None,
) -> dict[str, Any]:
    """Split -> model -> train with early stopping -> test the best state. Returns the metrics.

    With an inner search (protocol.search) the seed trains several models on the same split and
    tests the one with the best validation score; search.csv lists them all.
    """
    seed_everything(seed, device, bool(cfg.trainer.deterministic))
    split = split_cohort(cohort, cfg, seed)
    _require_both_classes(cohort, split, seed)
    write_split(split, seed_dir / "split.json")
    batches = cohort_batches(
        cohort,
        split,
        device,
        augment=augment_settings(cfg.task.augment, pif=cfg.model.name == "pif"),
        on_device=cfg.data.on_device,
        memory_fraction=float(cfg.data.device_memory_fraction),
    )

    runs = search_runs(cfg, seed)
    fitted = []
    for run_index, settings in enumerate(runs):
        trainer = OmegaConf.merge(cfg.trainer, settings)
        run_seed_value = seed if len(runs) == 1 else seed * len(runs) + run_index
        seed_everything(run_seed_value, device, bool(trainer.deterministic))
        label = f"seed {seed}" if len(runs) == 1 else f"seed {seed} run {run_index}"
        model, result = fit_model(
            cfg, trainer, batches, device, run_seed_value, label, on_first_epoch
        )
        fitted.append((model, result, trainer))
        on_first_epoch = _ignore  # announced once
    if len(runs) > 1:
        window = int(cfg.protocol.search.window)
        scores = [search_score(pd.DataFrame(result.epochs), window) for _, result, _ in fitted]
        search = pd.DataFrame(runs).assign(
            score=scores, early_stopping_epoch=[r.early_stopping_epoch for _, r, _ in fitted]
        )
        write_atomic(seed_dir / "search.csv", lambda tmp: search.to_csv(tmp, index=False))
        model, result, trainer = fitted[int(np.argmax(scores))]
    else:
        model, result, trainer = fitted[0]

    bf16 = _on_for_cuda(trainer.bf16, device)
    model.load_state_dict(result.best_state)
    _, probabilities, labels = evaluate(
        model,
        batches.batches("test", int(trainer.batch_size)),
        lambda: precision_context(device, bf16),
    )
    epochs = pd.DataFrame(result.epochs)
    write_atomic(seed_dir / "epochs.csv", lambda tmp: epochs.to_csv(tmp, index=False))
    write_atomic(
        seed_dir / "best.pt",
        lambda tmp: torch.save({k: v.cpu() for k, v in result.best_state.items()}, tmp),
    )
    predictions = pd.DataFrame(
        {"row": partition_rows(cohort.index, {"test": split["test"]})["test"], "label": labels,
         "probability": probabilities}
    )  # fmt: skip
    write_atomic(
        seed_dir / "test_predictions.csv", lambda tmp: predictions.to_csv(tmp, index=False)
    )
    metrics = {
        "seed": seed,
        **binary_metrics(labels, probabilities),
        "early_stopping_epoch": result.early_stopping_epoch,
        "best_epoch": result.best_epoch,
        "epochs_trained": len(result.epochs),
        "stopped_early": result.stopped_early,
        "train_images": batches.size("train"),
        "val_images": batches.size("val"),
        "test_images": batches.size("test"),
        "seconds": round(sum(r.seconds for _, r, _ in fitted), 2),
    }
    write_json_atomic(seed_dir / "metrics.json", metrics)  # last: marks the seed as done
    return metrics


def fit_model(
    cfg: DictConfig,
    trainer: DictConfig,
    batches: CohortBatches,
    device: torch.device,
    seed: int,
    label: str,
    on_first_epoch: Callable[[float], None],
) -> tuple[nn.Module, FitResult]:
    """Build a fresh model and train it with `trainer`'s settings on the batches' partitions."""
    model = build_model(OmegaConf.to_container(cfg.model, resolve=True), cfg.task.input_shape)
    channels_last = _on_for_cuda(trainer.channels_last, device)
    model = model.to(device, memory_format=torch.channels_last_3d if channels_last else None)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=float(trainer.lr), weight_decay=float(trainer.weight_decay)
    )
    bf16 = _on_for_cuda(trainer.bf16, device)
    generator = torch.Generator(device=device).manual_seed(seed)
    batch_size = int(trainer.batch_size)
    bar = tqdm(
        total=int(trainer.max_epochs), desc=label, leave=False, unit="epoch",
        disable=not trainer.progress,
    )  # fmt: skip
    started = time.perf_counter()

    def on_epoch(row: dict[str, float]) -> None:
        if row["epoch"] == 0:
            on_first_epoch(time.perf_counter() - started)
        bar.update()
        bar.set_postfix(
            val_loss=f"{row['val_loss']:.3f}", val_ba=f"{row['val_balanced_accuracy']:.3f}"
        )

    result = fit(
        model,
        lambda epoch: batches.batches("train", batch_size, generator),
        lambda: batches.batches("val", batch_size),
        optimizer,
        EarlyStopping(int(trainer.patience), int(trainer.ignore_before)),
        int(trainer.max_epochs),
        # (B, 1, D, H, W) stays 5-D; channels-last only changes its memory layout
        augment=lambda x: (
            x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x
        ),
        autocast=lambda: precision_context(device, bf16),
        on_epoch=on_epoch,
        select=str(cfg.protocol.selection),
    )
    bar.close()
    return model, result


def cpu_time_estimate(cfg: DictConfig, seeds_left: int) -> Callable[[float], None]:
    """Once the first epoch is timed: say how long the run may take on this CPU."""

    def announce(epoch_seconds: float) -> None:
        trainer = cfg.trainer
        runs = len(search_runs(cfg, 0)) * seeds_left
        most_epochs = int(trainer.max_epochs)
        fewest_epochs = min(int(trainer.ignore_before) + int(trainer.patience) + 1, most_epochs)
        log.warning(
            "no CUDA device: an epoch takes about %.1f s on this CPU, so the %d seed(s) left "
            "take about %.0f to %.0f min (%d to %d epochs each)",
            epoch_seconds, seeds_left, runs * fewest_epochs * epoch_seconds / 60,
            runs * most_epochs * epoch_seconds / 60, fewest_epochs, most_epochs,
        )  # fmt: skip

    return announce


def summary_row(results: pd.DataFrame, cfg: DictConfig, source: dict[str, Any]) -> pd.DataFrame:
    """This run's row of Table 1: mean and std over seeds, and where the data came from."""
    row = {
        "task": cfg.task.name,
        "model": cfg.model.name,
        "architecture": cfg.model.architecture,
        "protocol": cfg.protocol.name,
        "subset": float(cfg.data.subset),
        "seeds": len(results),
    }
    for column in ("balanced_accuracy", "early_stopping_epoch", "roc_auc"):
        row[f"{column}_mean"] = results[column].mean()
        row[f"{column}_std"] = results[column].std(ddof=1) if len(results) > 1 else float("nan")
    row["data_source"] = source["text"]
    row["manifest_sha256"] = source["sha256"]
    return pd.DataFrame([row])


def summary_markdown(summary: pd.DataFrame) -> str:
    row = summary.iloc[0]
    return "\n".join(
        [
            f"# {row.task} / {row.architecture} ({row.model}), protocol {row.protocol}",
            "",
            f"Data: {row.data_source}.",
            f"Training subjects used: {row.subset:.0%}; seeds: {row.seeds}.",
            "",
            "| Bal. acc. (%) | Early stopping epoch | ROC AUC |",
            "| --- | --- | --- |",
            f"| {100 * row.balanced_accuracy_mean:.2f} ± {100 * row.balanced_accuracy_std:.2f} "
            f"| {row.early_stopping_epoch_mean:.1f} ± {row.early_stopping_epoch_std:.1f} "
            f"| {row.roc_auc_mean:.3f} ± {row.roc_auc_std:.3f} |",
            "",
            "Mean ± standard deviation over seeds.",
            "",
        ]
    )


def train(cfg: DictConfig, run_dir: Path, overridden: Collection[str] = ()) -> pd.DataFrame:
    """Train and test every seed of the cell that `cfg` describes; returns results.csv's table.

    `overridden`: the settings given on the command line, which a protocol's per-cell settings
    leave as they are."""
    run_dir = Path(run_dir)
    trainer = cfg.trainer
    device = resolve_device(str(trainer.device))
    if trainer.num_threads:
        torch.set_num_threads(int(trainer.num_threads))
    apply_cell_settings(cfg, overridden)
    if cfg.data.source == "synthetic":
        cfg.data.manifest = str(ensure_synthetic_cohort(cfg))
    prepare_run_dir(cfg, run_dir)
    cohort = prepare_cohort(cfg)
    source = data_source(cfg)
    if device.type == "cpu":
        log.warning("no CUDA device: training on the CPU (%d threads)", torch.get_num_threads())

    seeds = [int(trainer.first_seed) + k for k in range(int(trainer.seeds))]
    seeds_left = sum(not (run_dir / f"seed-{seed}" / "metrics.json").exists() for seed in seeds)
    # the first seed trained in this process times an epoch on the CPU
    estimate = cpu_time_estimate(cfg, seeds_left) if device.type == "cpu" else None
    rows = []
    for seed in tqdm(seeds, desc=f"{cfg.task.name}/{cfg.model.name}", unit="seed",
                     disable=not trainer.progress):  # fmt: skip
        seed_dir = run_dir / f"seed-{seed}"
        done = seed_dir / "metrics.json"
        if done.exists():
            rows.append(json.loads(done.read_text()))
            tqdm.write(f"seed {seed}: done earlier, skipped")
            continue
        started = time.perf_counter()
        metrics = run_seed(cfg, cohort, seed, seed_dir, device, estimate or _ignore)
        estimate = None
        rows.append(metrics)
        tqdm.write(
            f"seed {seed}: balanced accuracy {metrics['balanced_accuracy']:.3f}, ROC AUC "
            f"{metrics['roc_auc']:.3f}, early stopping at epoch {metrics['early_stopping_epoch']}"
            f" ({time.perf_counter() - started:.0f} s)"
        )
        _write_tables(pd.DataFrame(rows), cfg, source, run_dir)
    results = pd.DataFrame(rows)[RESULT_COLUMNS]
    summary = _write_tables(results, cfg, source, run_dir)
    print(summary_markdown(summary))
    return results


def _write_tables(rows: pd.DataFrame, cfg: DictConfig, source: dict, run_dir: Path) -> pd.DataFrame:
    results = rows[RESULT_COLUMNS].sort_values("seed")
    summary = summary_row(results, cfg, source)
    write_atomic(run_dir / "results.csv", lambda tmp: results.to_csv(tmp, index=False))
    write_atomic(run_dir / "summary.csv", lambda tmp: summary.to_csv(tmp, index=False))
    write_text_atomic(run_dir / "summary.md", summary_markdown(summary))
    return summary


def _require_both_classes(cohort: CachedCohort, split: dict, seed: int) -> None:
    labels = cohort.labels
    for partition, rows in partition_rows(cohort.index, split).items():
        if len(np.unique(labels[rows])) < 2:
            raise PifexpError(
                f"seed {seed}: the {partition} partition holds only one class "
                f"({len(rows)} images); the cohort is too small or too unbalanced for "
                "task.split's fractions"
            )


def _ignore(*args: Any) -> None:
    return None


def _on_for_cuda(setting: Any, device: torch.device) -> bool:
    return device.type == "cuda" if setting == "auto" else bool(setting)


def train_command(cfg: DictConfig) -> pd.DataFrame:
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    overridden = {override.split("=", 1)[0].lstrip("+~") for override in hydra_cfg.overrides.task}
    return train(cfg, Path(hydra_cfg.runtime.output_dir), overridden)
