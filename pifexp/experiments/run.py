"""One run = one cell of Table 1: every seed of a task x model x protocol, into a run folder
(its layout: pifexp.experiments.rundir). Rerunning the same command on the same folder skips the
seeds that are done."""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from pifexp.data.balance import covariate_balance
from pifexp.data.batches import CohortBatches, cohort_batches
from pifexp.data.cache import CachedCohort
from pifexp.data.cohort import prepare_cohort, split_cohort
from pifexp.data.manifest import read_manifest
from pifexp.data.splits import partition_rows
from pifexp.errors import ConfigError, PifexpError
from pifexp.experiments import rundir
from pifexp.experiments.protocol import search_runs, search_score
from pifexp.experiments.specs import RunSpec
from pifexp.experiments.summary import seed_line, summary_markdown, summary_row
from pifexp.experiments.watch import EpochWatch, tensorboard_writer
from pifexp.models import build_model
from pifexp.synthetic import ensure_cohort
from pifexp.training.early_stopping import EarlyStopping
from pifexp.training.loop import FitResult, evaluate, fit, precision_context
from pifexp.training.metrics import binary_metrics
from pifexp.training.spec import TrainerSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainedRun:
    """What a finished `train` leaves: results.csv's table and this run's row of Table 1."""

    run_dir: Path
    results: pd.DataFrame
    summary: pd.DataFrame
    markdown: str


def resolve_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda, but no CUDA device is available")
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


def data_source(spec: RunSpec, manifest: Path) -> dict[str, Any]:
    """Where the images came from, for every table that reports on them."""
    digest = hashlib.sha256(Path(manifest).read_bytes()).hexdigest()[:16]
    if spec.synthetic is not None:
        text = (
            f"synthetic cohort (pifexp data synth, task {spec.task}, seed "
            f"{spec.synthetic.seed}, profile {spec.profile}); not the paper's data"
        )
    else:
        text = f"manifest {manifest} (sha256 {digest})"
    return {
        "source": "synthetic" if spec.synthetic is not None else "manifest",
        "manifest": str(manifest),
        "sha256": digest,
        "text": text,
    }


def run_seed(
    spec: RunSpec,
    cohort: CachedCohort,
    seed: int,
    device: torch.device,
    folder: Path,
    on_timed_epoch: Callable[[float], None] = lambda seconds: None,
    covariates: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Split -> model -> train with early stopping -> test the selected state. Returns the
    metrics. With an inner search (spec.search) the seed trains several models on the same split
    and tests the one with the best validation score; search.csv lists them all."""
    seed_everything(seed, device, spec.trainer.deterministic)
    split = split_cohort(cohort, spec.split, seed)
    _require_both_classes(cohort, split, seed)
    rundir.write_split(folder, split)
    if covariates is not None:
        partitions = partition_rows(cohort.index, split)
        rundir.write_covariates(folder, covariate_balance(covariates, partitions))
    batches = cohort_batches(
        cohort,
        split,
        device,
        augment=spec.augment,
        on_device=spec.data.on_device,
        memory_fraction=spec.data.device_memory_fraction,
    )
    model, result, trainer, seconds = _train_runs(
        spec, batches, seed, device, folder, on_timed_epoch
    )
    bf16 = _on_for_cuda(trainer.bf16, device)
    model.load_state_dict(result.best_state)
    _, probabilities, labels = evaluate(
        model, batches.batches("test", trainer.batch_size), lambda: precision_context(device, bf16)
    )
    rundir.write_epochs(folder, pd.DataFrame(result.epochs))
    rundir.write_checkpoint(folder, result.best_state, spec.network)
    test_rows = partition_rows(cohort.index, {"test": split["test"]})["test"]
    images = cohort.index.iloc[test_rows]
    predictions = pd.DataFrame({"row": test_rows, "label": labels, "probability": probabilities})
    for column in ("subject_id", "session", "path"):  # which image each row is
        predictions[column] = images[column].to_numpy()
    rundir.write_predictions(folder, predictions)
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
        "seconds": round(seconds, 2),
        # distinct subjects per partition (a subject may have several images)
        **{f"{name}_subjects": len(split[name]) for name in ("train", "val", "test")},
    }
    rundir.write_metrics(folder, metrics)  # last: marks the seed as done
    return metrics


def _train_runs(
    spec: RunSpec,
    batches: CohortBatches,
    seed: int,
    device: torch.device,
    folder: Path,
    on_timed_epoch: Callable[[float], None],
) -> tuple[nn.Module, FitResult, TrainerSpec, float]:
    """Every training run of one seed (one, or an inner search's); returns the one to test, its
    trainer settings and the seconds all runs took."""
    runs = search_runs(spec.search, seed)
    fitted = []
    for run_index, settings in enumerate(runs):
        trainer = replace(spec.trainer, **settings)
        run_seed_value = seed if len(runs) == 1 else seed * len(runs) + run_index
        seed_everything(run_seed_value, device, trainer.deterministic)
        label = f"seed {seed}" if len(runs) == 1 else f"seed {seed} run {run_index}"
        run = None if len(runs) == 1 else run_index
        watch = EpochWatch(rundir.live_epochs_path(folder, run),
                           rundir.tensorboard_dir(folder, run) if trainer.tensorboard else None)
        model, result = fit_model(spec, trainer, batches, device, run_seed_value, label,
                                  on_timed_epoch, watch)  # fmt: skip
        fitted.append((model, result, trainer))
        on_timed_epoch = _ignore  # announced once
    seconds = sum(result.seconds for _, result, _ in fitted)
    if len(runs) == 1:
        return (*fitted[0], seconds)
    assert spec.search is not None
    scores = [search_score(pd.DataFrame(r.epochs), spec.search.window) for _, r, _ in fitted]
    search = pd.DataFrame(runs).assign(
        score=scores, early_stopping_epoch=[r.early_stopping_epoch for _, r, _ in fitted]
    )
    rundir.write_search(folder, search)
    return (*fitted[int(np.argmax(scores))], seconds)


def fit_model(
    spec: RunSpec,
    trainer: TrainerSpec,
    batches: CohortBatches,
    device: torch.device,
    seed: int,
    label: str,
    on_timed_epoch: Callable[[float], None],
    watch: EpochWatch | None = None,
) -> tuple[nn.Module, FitResult]:
    """Build a fresh network and train it with `trainer`'s settings on the batches' partitions;
    each epoch's row goes to `watch` as it ends (epochs.csv, TensorBoard)."""
    model = build_model(spec.network)
    channels_last = _on_for_cuda(trainer.channels_last, device)
    model = model.to(device, memory_format=torch.channels_last_3d if channels_last else None)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=float(trainer.lr), weight_decay=float(trainer.weight_decay)
    )
    bf16 = _on_for_cuda(trainer.bf16, device)
    generator = torch.Generator(device=device).manual_seed(seed)
    bar = tqdm(total=trainer.max_epochs, desc=label, leave=False, unit="epoch",
               disable=progress_off(trainer.progress))  # fmt: skip
    previous_seconds = [0.0]  # the loop's wall time when the last epoch ended

    def on_epoch(row: dict[str, float]) -> None:
        seconds = timed_epoch(row, previous_seconds[0], trainer.max_epochs)
        if seconds is not None:
            on_timed_epoch(seconds)
        previous_seconds[0] = row["seconds"]
        if watch is not None:
            watch.epoch(row, optimizer.param_groups[0]["lr"])
        bar.update()
        bar.set_postfix(
            val_loss=f"{row['val_loss']:.3f}", val_ba=f"{row['val_balanced_accuracy']:.3f}"
        )

    # a last training batch of one image is left out (another image each epoch, as the order is
    # shuffled): BatchNorm cannot train on one value per channel, which is what a single image
    # gives the PIF layer's BatchNorm when its patches have one output voxel each
    single_left = batches.size("train") % trainer.batch_size == 1
    result = fit(
        model,
        lambda epoch: batches.batches("train", trainer.batch_size, generator, single_left),
        lambda: batches.batches("val", trainer.batch_size),
        optimizer,
        EarlyStopping(trainer.patience, trainer.ignore_before, trainer.stopping_rule),
        trainer.max_epochs,
        # (B, 1, D, H, W) stays 5-D; channels-last only changes its memory layout
        augment=lambda x: (
            x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x
        ),
        autocast=lambda: precision_context(device, bf16),
        on_epoch=on_epoch,
        select=trainer.selection,
    )
    bar.close()
    if watch is not None:
        watch.close()
    return model, result


def timed_epoch(row: dict[str, float], previous_seconds: float, max_epochs: int) -> float | None:
    """The seconds of the epoch that times a run: the second one, since the first also pays
    one-off costs (memory, kernel choices); the first where it is the only one. None for the
    other epochs. `row["seconds"]` is the loop's running wall time when the epoch ended."""
    if row["epoch"] != min(1, max_epochs - 1):
        return None
    return row["seconds"] - previous_seconds


def cpu_time_estimate(spec: RunSpec, seeds_left: int) -> Callable[[float], None]:
    """Once an epoch is timed (timed_epoch): say how long the run may take on this CPU."""

    def announce(epoch_seconds: float) -> None:
        trainer = spec.trainer
        runs = len(search_runs(spec.search, 0)) * seeds_left
        most_epochs = trainer.max_epochs
        fewest_epochs = min(trainer.ignore_before + trainer.patience + 1, most_epochs)
        fewest_minutes = runs * fewest_epochs * epoch_seconds / 60
        most_minutes = runs * most_epochs * epoch_seconds / 60
        span = (
            "under a minute"
            if most_minutes < 1
            else f"about {fewest_minutes:.0f} to {most_minutes:.0f} min"
        )
        log.warning(
            "no CUDA device: an epoch takes about %.1f s on this CPU, so the %d seed(s) left "
            "take %s (%d to %d epochs each)",
            epoch_seconds, seeds_left, span, fewest_epochs, most_epochs,
        )  # fmt: skip

    return announce


def prepare_run(
    spec: RunSpec, run_dir: Path
) -> tuple[CachedCohort, dict[str, Any], pd.DataFrame]:
    """The run's cohort (generated and cached on first use), its data source and its manifest
    (covariates, in the cache's row order); the run folder's config saved, or checked against
    the one it was made with."""
    manifest = spec.manifest
    record = copy.deepcopy(spec.config)
    if spec.synthetic is not None:
        manifest, _ = ensure_cohort(spec.synthetic)
        record["data"]["manifest"] = str(manifest)
    assert manifest is not None
    rundir.prepare(run_dir, record)
    cohort = prepare_cohort(manifest, spec.data)
    source = data_source(spec, manifest)
    rundir.check_same_input(run_dir, source)
    rundir.write_input(run_dir, cohort.grid, spec.data.preprocess.as_dict(), source, cohort.path)
    manifest_df = read_manifest(manifest, spec.data.classes, spec.data.mixed_label_subjects)
    return cohort, source, manifest_df


def train(spec: RunSpec, run_dir: Path) -> TrainedRun:
    """Train and test every seed of the cell that `spec` describes into `run_dir`, logging a
    line per seed (to the screen and the run's log)."""
    run_dir = Path(run_dir)
    if spec.trainer.tensorboard:
        tensorboard_writer(None)  # the extra is there, or one line before any work
    log.info("run folder: %s", run_dir)
    device = resolve_device(spec.trainer.device)
    if spec.trainer.num_threads:
        torch.set_num_threads(spec.trainer.num_threads)
    cohort, source, manifest_df = prepare_run(spec, run_dir)
    if device.type == "cpu":
        log.warning("no CUDA device: training on the CPU (%d threads)", torch.get_num_threads())

    trainer = spec.trainer
    seeds = [trainer.first_seed + k for k in range(trainer.seeds)]
    seeds_left = sum(not rundir.seed_done(run_dir, seed) for seed in seeds)
    # the first seed trained in this process times an epoch on the CPU (its second)
    estimate = cpu_time_estimate(spec, seeds_left) if device.type == "cpu" else None
    rows = []
    # progress bars on a terminal only, and log lines printed above them, not through them
    with logging_redirect_tqdm():
        for seed in tqdm(seeds, desc=f"{spec.task}/{spec.model}", unit="seed",
                         disable=progress_off(trainer.progress)):  # fmt: skip
            folder = rundir.seed_dir(run_dir, seed)
            if rundir.seed_done(run_dir, seed):
                rows.append(rundir.read_metrics(folder))
                log.info("seed %d: done earlier, skipped", seed)
                continue
            started = time.perf_counter()
            metrics = run_seed(
                spec, cohort, seed, device, folder, estimate or _ignore, manifest_df
            )
            estimate = None
            rows.append(metrics)
            log.info("%s (%.0f s)", seed_line(metrics), time.perf_counter() - started)
            _write_tables(pd.DataFrame(rows), spec, source, run_dir)
    results, summary, markdown = _write_tables(pd.DataFrame(rows), spec, source, run_dir)
    log.info("results: %s", run_dir / rundir.RESULTS_FILE)
    return TrainedRun(run_dir, results, summary, markdown)


def progress_off(progress: bool) -> bool | None:
    """tqdm's `disable`: off when asked, else on only where the output is a terminal (None)."""
    return True if not progress else None


def _write_tables(
    rows: pd.DataFrame, spec: RunSpec, source: dict, run_dir: Path
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    results = rows[rundir.RESULT_COLUMNS].sort_values("seed")
    summary = summary_row(results, spec, source)
    markdown = summary_markdown(summary)
    rundir.write_tables(run_dir, results, summary, markdown)
    return results, summary, markdown


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
