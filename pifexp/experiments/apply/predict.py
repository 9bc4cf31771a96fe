"""`pifexp predict`: a finished run applied to images: every seed's probability of class 1, their
mean and spread, the predicted class, and the test metrics where the images are labelled."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from pifexp.data.manifest import LABEL, PATH, SESSION, SUBJECT
from pifexp.errors import ConfigError
from pifexp.experiments import rundir
from pifexp.experiments.apply.finished import FinishedRun, open_finished_run
from pifexp.experiments.apply.new_images import ImagesSpec, images_cohort, labelled, read_images
from pifexp.files import write_atomic
from pifexp.training.metrics import binary_metrics

THRESHOLD = 0.5  # the predicted class: class 1 where the mean probability reaches it
ENSEMBLE = "mean over seeds"


@dataclass(frozen=True)
class PredictSpec:
    """A `pifexp predict` call, checked."""

    run_dir: Path
    images: ImagesSpec
    out: Path | None  # None: rundir.prediction_path
    batch_size: int = 8
    num_threads: int | None = None

    def __post_init__(self) -> None:
        if self.images.manifest is None:
            raise ConfigError(
                "data.manifest is required: pifexp predict RUN_DIR data.manifest=FILE"
            )
        if isinstance(self.batch_size, bool) or not int(self.batch_size) >= 1:
            raise ConfigError(f"batch_size={self.batch_size!r} must be an integer >= 1")


@dataclass(frozen=True)
class Predictions:
    """What `predict` wrote: one row per image, and the metrics where labels were given."""

    run: FinishedRun
    table: pd.DataFrame
    metrics: pd.DataFrame | None  # one row per seed and one for the mean probability
    path: Path
    metrics_path: Path | None


def predict(spec: PredictSpec) -> Predictions:
    """Every finished seed of spec.run_dir applied to the images of spec.images.manifest."""
    run = open_finished_run(spec.run_dir)
    if spec.num_threads:
        torch.set_num_threads(spec.num_threads)
    assert spec.images.manifest is not None
    images = read_images(spec.images.manifest, run)
    cohort = images_cohort(images, run, spec.images)
    volumes = cohort.volumes  # the cache holds the manifest's rows in its order
    columns = {}
    hidden = not spec.images.progress
    for seed, folder in tqdm(run.seeds, desc="seeds", unit="seed", disable=hidden):
        columns[f"probability_seed{seed}"] = probabilities(
            run.network(folder), volumes, spec.batch_size
        )
    table = prediction_table(images, columns, run.classes)
    metrics = prediction_metrics(table, columns) if labelled(images) else None
    manifest = Path(images.attrs["manifest"])
    path = Path(spec.out) if spec.out else rundir.prediction_path(run.run_dir, manifest)
    write_atomic(path, lambda tmp: table.to_csv(tmp, index=False))
    metrics_path = None
    if metrics is not None:
        metrics_path = path.with_name(f"{path.stem}.metrics.csv")
        write_atomic(metrics_path, lambda tmp: metrics.to_csv(tmp, index=False))
    return Predictions(run, table, metrics, path, metrics_path)


def probabilities(model: nn.Module, volumes: np.ndarray, batch_size: int) -> np.ndarray:
    """sigmoid(logit) of every volume (N, D, H, W), batch by batch, as training's test did."""
    model.eval()
    found = []
    with torch.no_grad():
        for start in range(0, len(volumes), batch_size):
            x = torch.from_numpy(np.array(volumes[start : start + batch_size], np.float32))
            found.append(model(x.unsqueeze(1)).squeeze(1).float())
    return torch.sigmoid(torch.cat(found)).numpy()


def prediction_table(
    images: pd.DataFrame, columns: dict[str, np.ndarray], classes: tuple[str, str]
) -> pd.DataFrame:
    """One row per image: which image, each seed's probability, their mean and SD over seeds, the
    predicted class; the true class where the manifest gives it."""
    table = images[[SUBJECT, SESSION, PATH]].reset_index(drop=True)
    if labelled(images):
        table["label"] = images[LABEL].to_numpy()
        table["class"] = [classes[label] for label in table["label"]]
    seeds = pd.DataFrame(columns)
    table = pd.concat([table, seeds], axis=1)
    table["probability_mean"] = seeds.mean(axis=1)
    table["probability_sd"] = seeds.std(axis=1, ddof=1)  # NaN for a single seed
    table["predicted"] = np.where(table["probability_mean"] >= THRESHOLD, classes[1], classes[0])
    return table


def prediction_metrics(table: pd.DataFrame, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """binary_metrics of each seed and of the mean probability over seeds."""
    labels = table["label"].to_numpy()  # both classes: read_manifest requires them
    rows = [
        {"seed": name.removeprefix("probability_seed"), **binary_metrics(labels, values)}
        for name, values in columns.items()
    ]
    rows.append({"seed": ENSEMBLE, **binary_metrics(labels, table["probability_mean"].to_numpy())})
    return pd.DataFrame(rows)
